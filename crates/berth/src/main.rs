#![recursion_limit = "512"]
//! berth: the CLI. Thin: parse Docker's flags, call the engine, print what
//! docker prints. Exit codes as docker's: 125 for berth's own errors, 126/127
//! when the command cannot be executed / found, the container's code otherwise.

mod attach;
mod build;
mod cli;
mod containers;
mod format;
mod images;
mod inspect;
mod networks;
mod progress;
mod stats;

use std::path::PathBuf;

use clap::Parser;

fn main() {
    let args = match cli::Cli::try_parse() {
        Ok(a) => a,
        Err(e) => {
            let code = match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => 0,
                _ => 125,
            };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    let code = match run(args) {
        Ok(code) => code,
        Err(e) => {
            let code = e
                .downcast_ref::<berth_engine::EngineError>()
                .map(|e| e.exit_code())
                .unwrap_or(125);
            eprintln!("berth: {}", error_chain(&e));
            code
        }
    };
    std::process::exit(code);
}

fn error_chain(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let s = cause.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
    }
    parts.join(": ")
}

pub fn engine(g: &cli::Global) -> anyhow::Result<berth_engine::Engine> {
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("/usr/local/bin/berth"));
    let bin_dir = exe.parent().map(PathBuf::from).unwrap_or_default();
    Ok(berth_engine::Engine::open(
        &g.root,
        &g.run_root,
        &g.runtime,
        bin_dir,
    )?)
}

fn run(args: cli::Cli) -> anyhow::Result<i32> {
    use cli::Command as C;
    let g = &args.global;
    match args.command {
        C::Run(a) => containers::run(g, *a),
        C::Create(a) => containers::create(g, *a),
        C::Start(a) => containers::start(g, a),
        C::Stop(a) => containers::stop(g, a, false),
        C::Restart(a) => containers::stop(g, a, true),
        C::Kill(a) => containers::kill(g, a),
        C::Rm(a) => containers::rm(g, a),
        C::Ps(a) => containers::ps(g, a),
        C::Logs(a) => containers::logs(g, a),
        C::Exec(a) => containers::exec(g, a),
        C::Attach(a) => containers::attach(g, a),
        C::Inspect(a) => inspect::inspect(g, a),
        C::Wait(a) => containers::wait(g, a),
        C::Top(a) => containers::top(g, a),
        C::Port(a) => containers::port(g, a),
        C::Rename(a) => containers::rename(g, a),
        C::Pause(a) => containers::pause(g, a, true),
        C::Unpause(a) => containers::pause(g, a, false),
        C::Update(a) => containers::update(g, a),
        C::Stats(a) => stats::stats(g, a),
        C::Events(a) => containers::events(g, a),
        C::Cp(a) => containers::cp(g, a),
        C::Diff(a) => images::diff(g, a),
        C::Container(c) => containers::container_cmd(g, c),
        C::Volume(c) => containers::volume_cmd(g, c),
        C::System(c) => containers::system_cmd(g, c),
        C::Network(c) => networks::network_cmd(g, c),
        C::Images(a) => images::images(g, a),
        C::Image(c) => images::image_cmd(g, c),
        C::Rmi(a) => images::rmi(g, a),
        C::Tag(a) => images::tag(g, a),
        C::History(a) => images::history(g, a),
        C::Load(a) => images::load(g, a),
        C::Save(a) => images::save(g, a),
        C::Import(a) => images::import(g, a),
        C::Pull(a) => images::pull(g, a),
        C::Push(a) => images::push(g, a),
        C::Login(a) => images::login(g, a),
        C::Logout(a) => images::logout(g, a),
        C::Build(a) => build::build(g, a),
        C::Builder(c) => build::builder_cmd(g, c),
        C::Version => {
            println!("berth version {}", env!("CARGO_PKG_VERSION"));
            Ok(0)
        }
    }
}
