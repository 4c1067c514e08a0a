//! builder: a parsed Dockerfile, stage by stage and instruction by instruction,
//! into images in berth's store — Docker's semantics, berth's cache.
//!
//! Every instruction that changes the image commits one image (a layer for RUN,
//! COPY, ADD and a WORKDIR that had to create its directory; config only for the
//! rest), registered as a build-cache image and recorded in the [`Cache`] under
//! (parent, instruction as written, inputs). A rebuild walks the same chain and
//! reuses each image while the keys match; the first miss says why, and every
//! later step misses because its parent is new. Only the stages the target needs
//! are built (a stage nobody copies from costs nothing). The result is tagged
//! only after every step succeeded, so a failed build never moves a tag.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use berth_engine::Engine;
use berth_image::{CommitOptions, Image, Store};
use oci_spec::image::Config;
use serde_json::{json, Map, Value};

use crate::cache::{Cache, Entry, Inputs};
use crate::context::{self, Context, Source};
use crate::dockerfile::{self, ArgDecl, CopySpec, Dockerfile, Instruction, Kind, ShellOrExec};
use crate::exec::{self, Mounted, RunSpec};
use crate::fsutil::{self, Attrs, Tree};
use crate::BuildError;

/// Where the context comes from.
pub enum ContextSource {
    Dir(PathBuf),
    /// A tar stream (`berth build -`), any compression; unpacked into scratch.
    Tar(Box<dyn Read>),
}

pub struct BuildOptions {
    pub context: ContextSource,
    /// `-f`: a path (relative paths are taken relative to the context root);
    /// None: `Dockerfile`, else `Containerfile`, in the context.
    pub dockerfile: Option<PathBuf>,
    /// The Dockerfile's text when it came from stdin (`-f -`).
    pub dockerfile_text: Option<String>,
    pub tags: Vec<String>,
    pub target: Option<String>,
    pub no_cache: bool,
    /// `--build-arg K=V`, or `K` alone (value from the environment, skipped if unset).
    pub build_args: Vec<(String, Option<String>)>,
    pub labels: Vec<(String, String)>,
    pub quiet: bool,
    /// RUN's network: `bridge` (default), `host`, `none`, or a berth network.
    pub network: String,
    /// Only print the lints; build nothing.
    pub lint_only: bool,
    pub platform: Option<String>,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            context: ContextSource::Dir(PathBuf::from(".")),
            dockerfile: None,
            dockerfile_text: None,
            tags: Vec::new(),
            target: None,
            no_cache: false,
            build_args: Vec::new(),
            labels: Vec::new(),
            quiet: false,
            network: "bridge".into(),
            lint_only: false,
            platform: None,
        }
    }
}

/// One step as it went.
#[derive(Debug, Clone)]
pub struct StepReport {
    pub number: usize,
    pub text: String,
    pub cached: bool,
    /// Why it missed (None for a hit, or a step that never caches: FROM, ARG).
    pub why: Option<String>,
    pub image: String,
}

pub struct BuildOutcome {
    /// None for `--lint` (nothing built).
    pub image: Option<Image>,
    pub steps: Vec<StepReport>,
    pub lints: Vec<dockerfile::lint::Lint>,
}

const HOST_PLATFORM: &str = "linux/amd64";
/// Docker's predefined proxy args: usable without ARG, kept out of cache keys and history.
const PROXY_ARGS: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

fn platform_args() -> Vec<(&'static str, &'static str)> {
    vec![
        ("BUILDPLATFORM", HOST_PLATFORM),
        ("BUILDOS", "linux"),
        ("BUILDARCH", "amd64"),
        ("BUILDVARIANT", ""),
        ("TARGETPLATFORM", HOST_PLATFORM),
        ("TARGETOS", "linux"),
        ("TARGETARCH", "amd64"),
        ("TARGETVARIANT", ""),
    ]
}

fn short(id: &str) -> &str {
    let h = id.strip_prefix("sha256:").unwrap_or(id);
    &h[..h.len().min(12)]
}

fn img_err(e: impl std::fmt::Display) -> BuildError {
    BuildError::Image(e.to_string())
}

/// The build's scratch directory under `<root>/build/tmp`, flocked while alive.
struct Scratch {
    dir: PathBuf,
    _lock: nix::fcntl::Flock<fs::File>,
    seq: usize,
}

impl Scratch {
    fn new(base: &Path) -> Result<Scratch, BuildError> {
        fs::create_dir_all(base)
            .map_err(|e| BuildError::io(format!("create {}", base.display()), e))?;
        exec::clean_debris(base);
        let name = format!(
            "{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        );
        // locked under a name clean_debris ignores, then renamed into view, so another
        // build's debris cleaner never finds `<name>.lock` unlocked
        let lock_path = base.join(format!("{name}.lock"));
        let hidden = base.join(format!(".{name}.locking"));
        let f = fs::File::create(&hidden).map_err(|e| BuildError::io("create build lock", e))?;
        let lock = nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusiveNonblock)
            .map_err(|(_, e)| BuildError::io("lock build scratch", io::Error::from(e)))?;
        fs::rename(&hidden, &lock_path).map_err(|e| BuildError::io("rename build lock", e))?;
        let dir = base.join(name);
        fs::create_dir_all(&dir).map_err(|e| BuildError::io("create build scratch", e))?;
        Ok(Scratch {
            dir,
            _lock: lock,
            seq: 0,
        })
    }

    fn next(&mut self, what: &str) -> PathBuf {
        self.seq += 1;
        self.dir.join(format!("{what}-{}", self.seq))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
        let _ = fs::remove_file(self.dir.with_extension("lock"));
    }
}

/// `berth builder prune`: forget the cache and remove its images (not tagged ones,
/// not ones a container uses). Returns the removed image ids.
pub fn prune(engine: &Engine) -> Result<Vec<String>, BuildError> {
    let cache = Cache::open(&engine.root.dir.join("build/cache"))
        .map_err(|e| BuildError::io("open build cache", e))?;
    cache
        .clear()
        .map_err(|e| BuildError::io("clear build cache", e))?;
    let store = engine.images().map_err(img_err)?;
    let in_use = |id: &str| {
        engine
            .containers_using_image(id)
            .map(|u| !u.is_empty())
            .unwrap_or(true)
    };
    store.prune_intermediate(&in_use).map_err(img_err)
}

/// The state of the stage being built.
struct StageState {
    image: Option<Image>,
    config: Config,
    extra: Map<String, Value>,
    author: Option<String>,
    /// Declared ARGs in scope: None = declared without a value.
    args: BTreeMap<String, Option<String>>,
    shell: Vec<String>,
    /// CMD set by this stage (ENTRYPOINT then resets only an inherited CMD).
    cmd_set: bool,
    /// The current image was built (not found in the cache) during this build.
    fresh: bool,
}

impl StageState {
    fn parent_id(&self) -> String {
        self.image
            .as_ref()
            .map(|i| i.id.clone())
            .unwrap_or_else(|| "scratch".into())
    }

    fn env_get(&self, name: &str) -> Option<String> {
        self.config.env().as_ref().and_then(|env| {
            env.iter().rev().find_map(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                (k == name).then(|| v.to_string())
            })
        })
    }

    fn lookup(&self, name: &str) -> Option<String> {
        self.env_get(name)
            .or_else(|| self.args.get(name).cloned().flatten())
    }

    fn set_env(&mut self, k: &str, v: &str) {
        let mut env = self.config.env().clone().unwrap_or_default();
        let kv = format!("{k}={v}");
        match env.iter_mut().find(|e| e.split('=').next() == Some(k)) {
            Some(slot) => *slot = kv,
            None => env.push(kv),
        }
        self.config.set_env(Some(env));
    }

    fn workdir(&self) -> String {
        self.config
            .working_dir()
            .clone()
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| "/".into())
    }
}

struct Builder<'a> {
    engine: &'a Engine,
    store: &'a Store,
    cache: Cache,
    opts: &'a BuildOptions,
    out: &'a mut dyn Write,
    scratch: Scratch,
    ctx: Context,
    /// Build args given on the command line (resolved), and which were used.
    given: BTreeMap<String, String>,
    consumed: BTreeSet<String>,
    global: BTreeMap<String, Option<String>>,
    step_no: usize,
    total: usize,
    steps: Vec<StepReport>,
    /// Results of the stages built so far, by index.
    stage_images: Vec<Option<Image>>,
    stage_names: HashMap<String, usize>,
    /// The Dockerfile's escape character (`# escape=`).
    escape: char,
    /// `<Dockerfile path>:` for cache entries' origin (see [`Entry::origin`]).
    origin: String,
    /// The line of the instruction being built.
    line: usize,
}

pub fn build(
    engine: &Engine,
    opts: BuildOptions,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<BuildOutcome, BuildError> {
    let started = Instant::now();
    for t in &opts.tags {
        berth_image::Reference::parse(t)
            .map_err(|e| BuildError::Invalid(format!("invalid tag {t:?}: {e}")))?;
    }
    let store = engine.images().map_err(img_err)?;
    let mut scratch = Scratch::new(&engine.root.dir.join("build/tmp"))?;
    let mut opts = opts;
    let context_dir = match std::mem::replace(&mut opts.context, ContextSource::Dir(PathBuf::new()))
    {
        ContextSource::Dir(d) => {
            let md = fs::metadata(&d).map_err(|e| {
                BuildError::Invalid(format!(
                    "unable to prepare context: path {:?} not found: {e}",
                    d.display().to_string()
                ))
            })?;
            if !md.is_dir() {
                return Err(BuildError::Invalid(format!(
                    "unable to prepare context: {} is not a directory",
                    d.display()
                )));
            }
            d
        }
        ContextSource::Tar(r) => {
            let d = scratch.next("context");
            fs::create_dir_all(&d).map_err(|e| BuildError::io("create context dir", e))?;
            berth_image::layer::unpack(r, &d)
                .map_err(|e| BuildError::Invalid(format!("context tar from stdin: {e}")))?;
            d
        }
    };
    let opts = opts;
    // the Dockerfile
    let (text, df_path) = match (&opts.dockerfile_text, &opts.dockerfile) {
        (Some(t), _) => (t.clone(), None),
        (None, Some(p)) => {
            let p = if p.is_absolute() {
                p.clone()
            } else {
                context_dir.join(p)
            };
            let t = fs::read_to_string(&p).map_err(|e| {
                BuildError::Invalid(format!(
                    "unable to read the Dockerfile {}: {e}",
                    p.display()
                ))
            })?;
            (t, Some(p))
        }
        (None, None) => {
            let cands = [
                context_dir.join("Dockerfile"),
                context_dir.join("Containerfile"),
            ];
            let p = cands.iter().find(|p| p.is_file()).cloned().ok_or_else(|| {
                BuildError::Invalid(format!(
                    "no Dockerfile or Containerfile in the context {}",
                    context_dir.display()
                ))
            })?;
            (
                fs::read_to_string(&p)
                    .map_err(|e| BuildError::io(format!("read {}", p.display()), e))?,
                Some(p),
            )
        }
    };
    let df = dockerfile::parse(&text)?;
    let lints = dockerfile::lint::lint(&df);
    if !opts.quiet || opts.lint_only {
        for l in &lints {
            let _ = writeln!(err, "WARNING: line {}: {} [{}]", l.line, l.message, l.code);
        }
    }
    if opts.lint_only {
        return Ok(BuildOutcome {
            image: None,
            steps: Vec::new(),
            lints,
        });
    }
    let ctx = Context::open(&context_dir, df_path.as_deref()).map_err(|e| {
        BuildError::io(
            format!("open the build context {}", context_dir.display()),
            e,
        )
    })?;
    let cache = Cache::open(&engine.root.dir.join("build/cache"))
        .map_err(|e| BuildError::io("open build cache", e))?;

    let mut given = BTreeMap::new();
    for (k, v) in &opts.build_args {
        match v {
            Some(v) => {
                given.insert(k.clone(), v.clone());
            }
            None => {
                if let Ok(v) = std::env::var(k) {
                    given.insert(k.clone(), v);
                }
            }
        }
    }
    let mut b = Builder {
        engine,
        store,
        cache,
        opts: &opts,
        out,
        scratch,
        ctx,
        given,
        consumed: BTreeSet::new(),
        global: BTreeMap::new(),
        step_no: 0,
        total: 0,
        steps: Vec::new(),
        stage_images: vec![None; df.stages.len()],
        stage_names: HashMap::new(),
        escape: df.escape,
        origin: match &df_path {
            Some(p) => format!(
                "{}:",
                fs::canonicalize(p).unwrap_or_else(|_| p.clone()).display()
            ),
            None => String::new(),
        },
        line: 0,
    };
    let result = b.run(&df);
    let image = result?;
    // name it: only now, after every step succeeded
    if image.intermediate {
        store.set_intermediate(&image.id, false).map_err(img_err)?;
    }
    for t in &opts.tags {
        store.tag(&image.id, t).map_err(img_err)?;
    }
    let unused: Vec<&String> = b
        .given
        .keys()
        .filter(|k| !b.consumed.contains(*k) && !PROXY_ARGS.contains(&k.as_str()))
        .collect();
    if !unused.is_empty() && !opts.quiet {
        let names: Vec<&str> = unused.iter().map(|s| s.as_str()).collect();
        let _ = writeln!(
            err,
            "[Warning] One or more build-args [{}] were not consumed",
            names.join(" ")
        );
    }
    let image = store.resolve(&image.id).map_err(img_err)?;
    if opts.quiet {
        let _ = writeln!(b.out, "{}", image.id);
    } else {
        let _ = writeln!(
            b.out,
            "Successfully built {} in {:.2}s",
            image.short_id(),
            started.elapsed().as_secs_f64()
        );
        for t in &image.repo_tags {
            let _ = writeln!(
                b.out,
                "Successfully tagged {}",
                berth_image::store::familiar(t)
            );
        }
    }
    Ok(BuildOutcome {
        image: Some(image),
        steps: std::mem::take(&mut b.steps),
        lints,
    })
}

impl Builder<'_> {
    fn say(&mut self, s: &str) {
        if !self.opts.quiet {
            let _ = writeln!(self.out, "{s}");
            let _ = self.out.flush();
        }
    }

    fn run(&mut self, df: &Dockerfile) -> Result<Image, BuildError> {
        // global ARGs: visible to FROM lines only
        for (k, v) in platform_args() {
            self.global.insert(k.to_string(), Some(v.to_string()));
        }
        for a in &df.global_args {
            let global = self.global.clone();
            let value = self.arg_value(a, &|n| global.get(n).cloned().flatten())?;
            self.global.insert(a.name.clone(), value);
        }
        for (i, s) in df.stages.iter().enumerate() {
            if let Some(n) = &s.from.name {
                self.stage_names.entry(n.to_lowercase()).or_insert(i);
            }
        }
        let target = match &self.opts.target {
            None => df.stages.len() - 1,
            Some(t) => *self.stage_names.get(&t.to_lowercase()).ok_or_else(|| {
                BuildError::Invalid(format!("target stage {t:?} could not be found"))
            })?,
        };
        let needed = self.needed_stages(df, target);
        self.total = df
            .stages
            .iter()
            .enumerate()
            .filter(|(i, _)| needed.contains(i))
            .map(|(_, s)| 1 + s.instructions.len())
            .sum();
        let mut last = None;
        for i in 0..=target {
            if !needed.contains(&i) {
                continue;
            }
            let img = self.build_stage(df, i)?;
            self.stage_images[i] = Some(img.clone());
            last = Some(img);
        }
        let mut img = last.ok_or_else(|| BuildError::Invalid("nothing to build".into()))?;
        if !self.opts.labels.is_empty() {
            img = self.apply_cli_labels(img)?;
        }
        Ok(img)
    }

    /// The target and every stage it needs through FROM or COPY --from.
    fn needed_stages(&self, df: &Dockerfile, target: usize) -> BTreeSet<usize> {
        let global = |n: &str| self.global.get(n).cloned().flatten();
        let stage_ref = |name: &str, before: usize| -> Option<usize> {
            let mut used = BTreeSet::new();
            let name = dockerfile::expand_word_with(name, df.escape, &global, &mut used)
                .unwrap_or_else(|_| name.to_string());
            if let Ok(n) = name.parse::<usize>() {
                return (n < before).then_some(n);
            }
            self.stage_names
                .get(&name.to_lowercase())
                .copied()
                .filter(|i| *i < before)
        };
        let mut needed = BTreeSet::new();
        let mut todo = vec![target];
        while let Some(i) = todo.pop() {
            if !needed.insert(i) {
                continue;
            }
            let s = &df.stages[i];
            if let Some(d) = stage_ref(&s.from.image, i) {
                todo.push(d);
            }
            for ins in &s.instructions {
                if let Kind::Copy(c) | Kind::Add(c) = &ins.kind {
                    if let Some(f) = &c.from {
                        if let Some(d) = stage_ref(f, i) {
                            todo.push(d);
                        }
                    }
                }
            }
        }
        needed
    }

    fn arg_value(
        &mut self,
        a: &ArgDecl,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<String>, BuildError> {
        if let Some(v) = self.given.get(&a.name) {
            self.consumed.insert(a.name.clone());
            return Ok(Some(v.clone()));
        }
        match &a.default {
            Some(d) => {
                let mut used = BTreeSet::new();
                Ok(Some(dockerfile::expand_word_with(
                    d,
                    self.escape,
                    lookup,
                    &mut used,
                )?))
            }
            None => Ok(None),
        }
    }

    fn next_step(&mut self, text: &str) -> usize {
        self.step_no += 1;
        let n = self.step_no;
        let line = format!("Step {}/{} : {}", n, self.total, text);
        self.say(&line);
        n
    }

    fn build_stage(&mut self, df: &Dockerfile, i: usize) -> Result<Image, BuildError> {
        let stage = &df.stages[i];
        let from_text = stage_from_text(&stage.from);
        self.next_step(&from_text);
        // FROM sees the global args only
        let global = self.global.clone();
        let mut used = BTreeSet::new();
        let from = stage
            .from
            .expand(&|n| global.get(n).cloned().flatten(), &mut used)
            .map_err(BuildError::Parse)?;
        if let Some(p) = &from.platform {
            let p = p.trim();
            if !p.is_empty() && p != HOST_PLATFORM && p != "linux/x86_64" && p != "linux/amd64/v1" {
                return Err(BuildError::Invalid(format!(
                    "line {}: platform {p:?} is not supported here (this host builds {HOST_PLATFORM})",
                    stage.from.line
                )));
            }
        }
        let name = from.image.trim().to_string();
        let base: Option<Image> = if name.eq_ignore_ascii_case("scratch") {
            None
        } else if let Some(&j) = self
            .stage_names
            .get(&name.to_lowercase())
            .filter(|j| **j < i)
        {
            Some(self.stage_images[j].clone().ok_or_else(|| {
                BuildError::Invalid(format!(
                    "line {}: stage {name:?} was not built",
                    stage.from.line
                ))
            })?)
        } else {
            Some(self.store.resolve(&name).map_err(|e| {
                BuildError::Invalid(format!(
                    "line {}: FROM {name}: {e} (berth build uses local images: pull, load or build it first)",
                    stage.from.line
                ))
            })?)
        };
        let (config, mut extra, author) = match &base {
            Some(img) => {
                let cfg = img.config.config().clone().unwrap_or_default();
                let extra = docker_extras(self.store, img);
                (cfg, extra, img.config.author().clone())
            }
            None => {
                let mut c = Config::default();
                c.set_env(Some(vec![format!(
                    "PATH={}",
                    berth_engine::spec::DEFAULT_PATH
                )]));
                (c, Map::new(), None)
            }
        };
        let shell = extra
            .get("Shell")
            .and_then(|v| serde_json::from_value::<Vec<String>>(v.clone()).ok())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()]);
        let triggers: Vec<String> = extra
            .remove("OnBuild")
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default();
        let mut st = StageState {
            image: base.clone(),
            config,
            extra,
            author,
            args: BTreeMap::new(),
            shell,
            cmd_set: false,
            fresh: false,
        };
        let id = st.parent_id();
        self.say(&format!(" ---> {}", short(&id)));
        self.steps.push(StepReport {
            number: self.step_no,
            text: from_text,
            cached: false,
            why: None,
            image: id,
        });
        // the base image's ONBUILD triggers run first, as in docker
        if !triggers.is_empty() {
            self.say(&format!("# Executing {} build trigger(s)", triggers.len()));
            for t in &triggers {
                let ins = dockerfile::parse_instruction(t, stage.from.line, '\\')?;
                self.say(&format!(" ---> trigger: {t}"));
                self.instruction(&mut st, i, &ins, false)?;
            }
        }
        for ins in &stage.instructions {
            self.next_step(&ins.original);
            self.instruction(&mut st, i, ins, true)?;
        }
        match st.image.clone() {
            Some(img) => Ok(img),
            None => {
                // a stage of only FROM (+ARG): still an image of its own (an empty one for scratch)
                let step = "(stage result)".to_string();
                self.commit_step(&mut st, &step, None, None, Inputs::new(), false)
            }
        }
    }

    /// One instruction; `report` is false for ONBUILD triggers (no step of their own).
    fn instruction(
        &mut self,
        st: &mut StageState,
        stage_idx: usize,
        ins: &Instruction,
        report: bool,
    ) -> Result<(), BuildError> {
        let _ = report;
        let mut used = BTreeSet::new();
        let lookup = |n: &str| st.lookup(n);
        let expanded = ins.expand(&lookup, &mut used)?;
        // build args the substitution used are inputs of the step (the cache's "why")
        let mut inputs = Inputs::new();
        for n in &used {
            if st.env_get(n).is_none() {
                if let Some(Some(v)) = st.args.get(n) {
                    inputs.insert(format!("arg:{n}"), v.clone());
                }
            }
        }
        let step = ins.original.clone();
        let line = ins.line;
        self.line = line;
        match expanded.kind {
            Kind::Arg(decls) => {
                for a in &decls {
                    let from_global = self.global.get(&a.name).cloned().flatten();
                    let platform = platform_args()
                        .into_iter()
                        .find(|(k, _)| *k == a.name)
                        .map(|(_, v)| v.to_string());
                    let v = if let Some(v) = self.given.get(&a.name) {
                        self.consumed.insert(a.name.clone());
                        Some(v.clone())
                    } else if a.default.is_some() {
                        a.default.clone()
                    } else {
                        from_global.or(platform)
                    };
                    st.args.insert(a.name.clone(), v);
                }
                let id = st.parent_id();
                self.say(&format!(" ---> {}", short(&id)));
                self.steps.push(StepReport {
                    number: self.step_no,
                    text: step,
                    cached: false,
                    why: None,
                    image: id,
                });
                Ok(())
            }
            Kind::Env(pairs) => {
                for (k, v) in &pairs {
                    st.set_env(k, v);
                }
                self.meta_step(st, &step, inputs)
            }
            Kind::Label(pairs) => {
                let mut labels = st.config.labels().clone().unwrap_or_default();
                for (k, v) in pairs {
                    labels.insert(k, v);
                }
                st.config.set_labels(Some(labels));
                self.meta_step(st, &step, inputs)
            }
            Kind::User(u) => {
                st.config.set_user(Some(u));
                self.meta_step(st, &step, inputs)
            }
            Kind::Cmd(c) => {
                st.config.set_cmd(Some(self.argv(st, &c)));
                st.cmd_set = true;
                self.meta_step(st, &step, inputs)
            }
            Kind::Entrypoint(e) => {
                st.config.set_entrypoint(Some(self.argv(st, &e)));
                if !st.cmd_set {
                    st.config.set_cmd(None);
                }
                self.meta_step(st, &step, inputs)
            }
            Kind::Expose(words) => {
                let mut ports = st.config.exposed_ports().clone().unwrap_or_default();
                for w in words {
                    for p in expose_ports(&w)
                        .map_err(|m| BuildError::Invalid(format!("line {line}: {m}")))?
                    {
                        if !ports.contains(&p) {
                            ports.push(p);
                        }
                    }
                }
                st.config.set_exposed_ports(Some(ports));
                self.meta_step(st, &step, inputs)
            }
            Kind::Volume(paths) => {
                let mut vols = st.config.volumes().clone().unwrap_or_default();
                for p in paths {
                    if p.trim().is_empty() {
                        return Err(BuildError::Invalid(format!(
                            "line {line}: VOLUME specified can not be an empty string"
                        )));
                    }
                    if !vols.contains(&p) {
                        vols.push(p);
                    }
                }
                st.config.set_volumes(Some(vols));
                self.meta_step(st, &step, inputs)
            }
            Kind::StopSignal(s) => {
                st.config.set_stop_signal(Some(s));
                self.meta_step(st, &step, inputs)
            }
            Kind::Healthcheck(h) => {
                let mut o = Map::new();
                o.insert("Test".into(), json!(h.test));
                for (k, v) in [
                    ("Interval", h.interval),
                    ("Timeout", h.timeout),
                    ("StartPeriod", h.start_period),
                    ("StartInterval", h.start_interval),
                ] {
                    if v != 0 {
                        o.insert(k.into(), json!(v));
                    }
                }
                if h.retries != 0 {
                    o.insert("Retries".into(), json!(h.retries));
                }
                st.extra.insert("Healthcheck".into(), Value::Object(o));
                self.meta_step(st, &step, inputs)
            }
            Kind::Onbuild(t) => {
                let mut list: Vec<String> = st
                    .extra
                    .get("OnBuild")
                    .and_then(|v| serde_json::from_value(v.clone()).ok())
                    .unwrap_or_default();
                list.push(t);
                st.extra.insert("OnBuild".into(), json!(list));
                self.meta_step(st, &step, inputs)
            }
            Kind::Shell(v) => {
                st.shell = v.clone();
                st.extra.insert("Shell".into(), json!(v));
                self.meta_step(st, &step, inputs)
            }
            Kind::Maintainer(m) => {
                st.author = Some(m);
                self.meta_step(st, &step, inputs)
            }
            Kind::Workdir(w) => {
                let new = if w.starts_with('/') {
                    w.clone()
                } else {
                    format!("{}/{}", st.workdir().trim_end_matches('/'), w)
                };
                let new = format!("/{}", context::clean_rel(&new).unwrap_or_default());
                st.config.set_working_dir(Some(new.clone()));
                self.workdir_step(st, &step, &new, inputs)
            }
            Kind::Run { command, flags } => {
                self.run_step(st, &step, line, &command, &flags, inputs)
            }
            Kind::Copy(spec) => self.copy_step(st, stage_idx, &step, line, &spec, inputs, false),
            Kind::Add(spec) => self.copy_step(st, stage_idx, &step, line, &spec, inputs, true),
        }
    }

    fn argv(&self, st: &StageState, c: &ShellOrExec) -> Vec<String> {
        match c {
            ShellOrExec::Exec(v) => v.clone(),
            ShellOrExec::Shell(s) => {
                let mut v = st.shell.clone();
                v.push(s.clone());
                v
            }
        }
    }

    /// Look the step up; on a hit move the stage onto the cached image.
    fn try_cache(
        &mut self,
        st: &mut StageState,
        step: &str,
        inputs: &Inputs,
    ) -> Result<Option<String>, BuildError> {
        let parent = st.parent_id();
        let key = Cache::key(&parent, step, inputs);
        if self.opts.no_cache {
            return Ok(Some("--no-cache".into()));
        }
        if let Some(e) = self.cache.lookup(&key) {
            match self.store.resolve(&e.image) {
                Ok(img) => {
                    self.say(&format!(" ---> CACHED {}", short(&img.id)));
                    self.steps.push(StepReport {
                        number: self.step_no,
                        text: step.to_string(),
                        cached: true,
                        why: None,
                        image: img.id.clone(),
                    });
                    st.image = Some(img);
                    st.fresh = false;
                    return Ok(None);
                }
                Err(_) => {
                    let _ = self.cache.forget(&key);
                    return Ok(Some("its cached image was removed".into()));
                }
            }
        }
        let why = if st.fresh {
            "the previous step was rebuilt".to_string()
        } else {
            let origin = self.origin_here();
            self.cache
                .explain_miss(&parent, step, inputs, &origin)
                .unwrap_or_else(|| "not built before".to_string())
        };
        Ok(Some(why))
    }

    /// Commit the stage's current config (and `upper` as a layer) as the step's image.
    fn commit_step(
        &mut self,
        st: &mut StageState,
        step: &str,
        created_by: Option<String>,
        upper: Option<&Path>,
        inputs: Inputs,
        record: bool,
    ) -> Result<Image, BuildError> {
        let parent = st.parent_id();
        let opts = CommitOptions {
            config: Some(st.config.clone()),
            created_by: created_by.or_else(|| Some(step.to_string())),
            comment: Some("berth build".into()),
            author: st.author.clone(),
            extra_config: st.extra.clone(),
            intermediate: true,
            ..Default::default()
        };
        let img = self
            .store
            .commit(st.image.as_ref(), upper, &opts, None)
            .map_err(img_err)?;
        if record {
            let key = Cache::key(&parent, step, &inputs);
            let entry = Entry {
                parent,
                step: step.to_string(),
                inputs: Cache::inputs_digest(&inputs),
                image: img.id.clone(),
                created: berth_image::store::now_rfc3339(),
                origin: self.origin_here(),
            };
            self.cache
                .record(&key, entry, &inputs)
                .map_err(|e| BuildError::io("record build cache", e))?;
        }
        st.image = Some(img.clone());
        st.fresh = true;
        Ok(img)
    }

    fn origin_here(&self) -> String {
        if self.origin.is_empty() {
            String::new()
        } else {
            format!("{}{}", self.origin, self.line)
        }
    }

    fn report_built(&mut self, step: &str, why: String, img: &Image) {
        self.say(&format!(" ---> {}", short(&img.id)));
        self.steps.push(StepReport {
            number: self.step_no,
            text: step.to_string(),
            cached: false,
            why: Some(why),
            image: img.id.clone(),
        });
    }

    fn meta_step(
        &mut self,
        st: &mut StageState,
        step: &str,
        inputs: Inputs,
    ) -> Result<(), BuildError> {
        let Some(why) = self.try_cache(st, step, &inputs)? else {
            return Ok(());
        };
        self.say(&format!(" ---> cache miss: {why}"));
        let img = self.commit_step(st, step, None, None, inputs, true)?;
        self.report_built(step, why, &img);
        Ok(())
    }

    fn lowers(&self, img: Option<&Image>) -> Result<Vec<PathBuf>, BuildError> {
        match img {
            Some(i) => self.store.layer_dirs(i).map_err(img_err),
            None => Ok(Vec::new()),
        }
    }

    fn workdir_step(
        &mut self,
        st: &mut StageState,
        step: &str,
        dir: &str,
        inputs: Inputs,
    ) -> Result<(), BuildError> {
        let Some(why) = self.try_cache(st, step, &inputs)? else {
            return Ok(());
        };
        self.say(&format!(" ---> cache miss: {why}"));
        let lowers = self.lowers(st.image.as_ref())?;
        let mut m = Mounted::new(self.scratch.next("workdir"), lowers)?;
        {
            let tree = Tree::open(&m.rootfs).map_err(|e| BuildError::io("open rootfs", e))?;
            let owner = self.chown_ids(&m.rootfs, st.config.user().as_deref().unwrap_or(""))?;
            if tree.stat(dir.trim_start_matches('/')).is_err() {
                tree.mkdir_all(dir.trim_start_matches('/'), owner.filter(|o| *o != (0, 0)))
                    .map_err(|e| BuildError::Step(format!("WORKDIR {dir}: {e}")))?;
            }
        }
        m.unmount()?;
        let upper = m.changed().then(|| m.upper.clone());
        let img = self.commit_step(st, step, None, upper.as_deref(), inputs, true)?;
        drop(m);
        self.report_built(step, why, &img);
        Ok(())
    }

    /// uid:gid for a `--chown`/USER value, looked up in the image's passwd/group.
    fn chown_ids(&self, rootfs: &Path, spec: &str) -> Result<Option<(u32, u32)>, BuildError> {
        if spec.is_empty() {
            return Ok(None);
        }
        let u = berth_engine::users::resolve_in_rootfs(rootfs, spec, &[])
            .map_err(|e| BuildError::Step(format!("{spec}: {e}")))?;
        // `--chown=user` alone: the group is the user's primary group (resolve does that)
        Ok(Some((u.uid, u.gid)))
    }

    fn run_step(
        &mut self,
        st: &mut StageState,
        step: &str,
        line: usize,
        command: &ShellOrExec,
        flags: &[(String, String)],
        mut inputs: Inputs,
    ) -> Result<(), BuildError> {
        let mut network = self.opts.network.clone();
        for (k, v) in flags {
            match k.as_str() {
                "network" => {
                    network = match v.as_str() {
                        "default" => self.opts.network.clone(),
                        "none" | "host" => v.clone(),
                        other => {
                            return Err(BuildError::Invalid(format!(
                                "line {line}: RUN --network={other}: expected default, none or host"
                            )))
                        }
                    }
                }
                other => {
                    return Err(BuildError::Invalid(format!(
                        "line {line}: RUN --{other} is not supported by berth build"
                    )))
                }
            }
        }
        // every build arg in scope is in RUN's environment, so each is an input
        for (k, v) in &st.args {
            if let Some(v) = v {
                if !PROXY_ARGS.contains(&k.as_str()) {
                    inputs.insert(format!("arg:{k}"), v.clone());
                }
            }
        }
        let step_key = if network != self.opts.network {
            format!("{step} [network={network}]")
        } else {
            step.to_string()
        };
        let Some(why) = self.try_cache(st, &step_key, &inputs)? else {
            return Ok(());
        };
        self.say(&format!(" ---> cache miss: {why}"));
        let argv = self.argv(st, command);
        let created_by = match command {
            ShellOrExec::Shell(_) => format!("RUN {}", argv.join(" ")),
            ShellOrExec::Exec(v) => format!("RUN {}", serde_json::to_string(v).unwrap_or_default()),
        };
        let mut env: Vec<String> = st.config.env().clone().unwrap_or_default();
        let has = |env: &Vec<String>, k: &str| env.iter().any(|e| e.split('=').next() == Some(k));
        for (k, v) in &st.args {
            if let Some(v) = v {
                if !has(&env, k) {
                    env.push(format!("{k}={v}"));
                }
            }
        }
        for p in PROXY_ARGS {
            if let Some(v) = self.given.get(*p) {
                if !has(&env, p) {
                    env.push(format!("{p}={v}"));
                }
            }
        }
        let lowers = self.lowers(st.image.as_ref())?;
        let mut m = Mounted::new(self.scratch.next("run"), lowers)?;
        let id = exec::step_id(self.scratch.seq);
        self.say(&format!(" ---> Running in {}", &id[..12]));
        let capture = self.opts.quiet.then(|| m.dir.join("output"));
        let spec = RunSpec {
            id,
            argv: argv.clone(),
            env,
            user: st.config.user().clone().unwrap_or_default(),
            workdir: st.workdir(),
            network,
            capture: capture.clone(),
        };
        let code = exec::run(self.engine, &m, &spec)?;
        if code != 0 {
            if let Some(c) = &capture {
                if let Ok(text) = fs::read_to_string(c) {
                    eprint!("{text}");
                }
            }
            let cmd = match command {
                ShellOrExec::Shell(_) => argv.join(" "),
                ShellOrExec::Exec(v) => serde_json::to_string(v).unwrap_or_default(),
            };
            return Err(BuildError::RunFailed { command: cmd, code });
        }
        m.unmount()?;
        let upper = m.changed().then(|| m.upper.clone());
        let img = self.commit_step(
            st,
            &step_key,
            Some(created_by),
            upper.as_deref(),
            inputs,
            true,
        )?;
        drop(m);
        self.report_built(step, why, &img);
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn copy_step(
        &mut self,
        st: &mut StageState,
        stage_idx: usize,
        step: &str,
        line: usize,
        spec: &CopySpec,
        mut inputs: Inputs,
        add: bool,
    ) -> Result<(), BuildError> {
        let what = if add { "ADD" } else { "COPY" };
        let fail = |m: String| BuildError::Step(format!("line {line}: {what} failed: {m}"));
        if let Some((k, _)) = spec.extra_flags.first() {
            return Err(fail(format!("--{k} is not supported by berth build")));
        }
        if add && spec.from.is_some() {
            return Err(fail("ADD does not support --from; use COPY --from".into()));
        }
        for s in &spec.sources {
            let l = s.to_ascii_lowercase();
            if l.starts_with("http://")
                || l.starts_with("https://")
                || l.starts_with("git@")
                || l.starts_with("git://")
            {
                return Err(fail(format!(
                    "{s}: remote sources need network access, which berth build does not use; download it into the context and COPY it"
                )));
            }
        }
        let mut chmod = None;
        if let Some(m) = &spec.chmod {
            chmod = Some(
                u32::from_str_radix(m, 8)
                    .map_err(|_| fail(format!("invalid --chmod={m}: expected an octal mode")))?,
            );
        }
        // the source tree: the context, or another stage's / image's root filesystem
        // (mounted only when the step misses: its cache key is that image's id)
        let from_img = match &spec.from {
            Some(f) => {
                let img = self.from_image(f, stage_idx, line)?;
                inputs.insert(format!("from:{f}"), img.id.clone());
                Some(img)
            }
            None => None,
        };
        if from_img.is_none() {
            let source = self.source(None);
            let paths = context::resolve_sources(&source, &spec.sources).map_err(fail)?;
            let hashes = context::hash_sources(&source, &paths)
                .map_err(|e| fail(format!("read the context: {e}")))?;
            for (k, v) in hashes {
                inputs.insert(format!("file:{k}"), v);
            }
        }
        let Some(why) = self.try_cache(st, step, &inputs)? else {
            return Ok(());
        };
        let mut from_mount: Option<Mounted> = None;
        let mut from_tree: Option<Tree> = None;
        if let Some(img) = &from_img {
            let lowers = self.lowers(Some(img))?;
            let m = Mounted::new(self.scratch.next("from"), lowers)?;
            from_tree =
                Some(Tree::open(&m.rootfs).map_err(|e| BuildError::io("open --from root", e))?);
            from_mount = Some(m);
        }
        let paths = context::resolve_sources(&self.source(from_tree.as_ref()), &spec.sources)
            .map_err(fail)?;
        self.say(&format!(" ---> cache miss: {why}"));
        let multi = paths.len() > 1 || spec.sources.iter().any(|s| s.contains(['*', '?', '[']));
        let dest_raw = spec.dest.clone();
        let dest_abs = if dest_raw.starts_with('/') {
            dest_raw.clone()
        } else {
            format!("{}/{}", st.workdir().trim_end_matches('/'), dest_raw)
        };
        let dest_is_dir_syntax =
            dest_raw.ends_with('/') || dest_raw == "." || dest_raw.ends_with("/.");
        if multi && !dest_is_dir_syntax {
            return Err(fail(
                "When using COPY with more than one source file, the destination must be a directory and end with a /".into(),
            ));
        }
        let dest = context::clean_rel(&dest_abs).unwrap_or_default();
        let lowers = self.lowers(st.image.as_ref())?;
        let mut m = Mounted::new(self.scratch.next("copy"), lowers)?;
        {
            let source = self.source(from_tree.as_ref());
            let dst = Tree::open(&m.rootfs).map_err(|e| BuildError::io("open rootfs", e))?;
            let owner = match &spec.chown {
                Some(c) => self.chown_ids(&m.rootfs, c)?,
                None => None,
            };
            let attrs = Attrs { owner, mode: chmod };
            let keep_owner = spec.from.is_some();
            let skip = |rel: &str, is_dir: bool| source.skip(rel, is_dir);
            for p in &paths {
                let st_src = source.tree.stat(p).map_err(|e| fail(format!("{p}: {e}")))?;
                let dest_exists_dir = dst
                    .stat(&dest)
                    .map(|s| fsutil::is_dir_mode(s.st_mode))
                    .unwrap_or(false);
                if fsutil::is_dir_mode(st_src.st_mode) {
                    // a directory's contents go into dest
                    let dfd = dst
                        .mkdir_all(&dest, owner)
                        .map_err(|e| fail(format!("{dest_raw}: {e}")))?;
                    for child in source.tree.list(p).map_err(|e| fail(format!("{p}: {e}")))? {
                        let crel = context::join(p, &child);
                        let cst = source
                            .tree
                            .lstat(&crel)
                            .map_err(|e| fail(format!("{crel}: {e}")))?;
                        if skip(&crel, fsutil::is_dir_mode(cst.st_mode)) {
                            continue;
                        }
                        fsutil::copy_entry(
                            source.tree,
                            &crel,
                            std::os::fd::AsFd::as_fd(&dfd),
                            &child,
                            &attrs,
                            keep_owner,
                            &skip,
                        )
                        .map_err(|e| fail(format!("{crel}: {e}")))?;
                    }
                    continue;
                }
                let base = p.rsplit('/').next().unwrap_or(p).to_string();
                let (dir, name) = if dest_is_dir_syntax || dest_exists_dir || dest.is_empty() {
                    (dest.clone(), base.clone())
                } else {
                    let (d, n) = fsutil::split_last(&dest);
                    (
                        if d == "." {
                            String::new()
                        } else {
                            d.to_string()
                        },
                        n.unwrap_or(&base).to_string(),
                    )
                };
                let dfd = dst
                    .mkdir_all(&dir, owner)
                    .map_err(|e| fail(format!("{dest_raw}: {e}")))?;
                if add && spec.from.is_none() {
                    if let Some(n) = self.try_extract(&source, p, &dst, &dir)? {
                        let _ = n;
                        continue;
                    }
                }
                // a top-level symlink source is followed (inside its tree), as Docker does
                let src_rel = p.clone();
                let lst = source
                    .tree
                    .lstat(&src_rel)
                    .map_err(|e| fail(format!("{p}: {e}")))?;
                if lst.st_mode & libc::S_IFMT == libc::S_IFLNK {
                    let mut f = source
                        .tree
                        .open_file(&src_rel)
                        .map_err(|e| fail(format!("{p}: {e}")))?;
                    write_file(&dfd, &name, &mut f, &attrs, &st_src)
                        .map_err(|e| fail(format!("{p}: {e}")))?;
                } else {
                    fsutil::copy_entry(
                        source.tree,
                        &src_rel,
                        std::os::fd::AsFd::as_fd(&dfd),
                        &name,
                        &attrs,
                        keep_owner,
                        &skip,
                    )
                    .map_err(|e| fail(format!("{p}: {e}")))?;
                }
            }
        }
        m.unmount()?;
        drop(from_mount);
        let upper = m.changed().then(|| m.upper.clone());
        let img = self.commit_step(st, step, None, upper.as_deref(), inputs, true)?;
        drop(m);
        self.report_built(step, why, &img);
        Ok(())
    }

    fn source<'s>(&'s self, from: Option<&'s Tree>) -> Source<'s> {
        match from {
            Some(t) => Source {
                tree: t,
                ignore: None,
            },
            None => Source {
                tree: &self.ctx.tree,
                ignore: Some(&self.ctx.ignore),
            },
        }
    }

    /// ADD of a local tar archive (plain, gzip or zstd): unpack into `dir`.
    fn try_extract(
        &self,
        source: &Source<'_>,
        p: &str,
        dst: &Tree,
        dir: &str,
    ) -> Result<Option<()>, BuildError> {
        let mut f = match source.tree.open_file(p) {
            Ok(f) => f,
            Err(_) => return Ok(None),
        };
        let mut head = vec![0u8; 512];
        let n = read_up_to(&mut f, &mut head);
        head.truncate(n);
        let is_tar = |b: &[u8]| b.len() >= 262 && &b[257..262] == b"ustar";
        let archive = match berth_image::layer::sniff(&head) {
            berth_image::layer::Compression::None => is_tar(&head),
            _ => {
                // peek into the decompressed stream
                let f2 = source
                    .tree
                    .open_file(p)
                    .map_err(|e| BuildError::io(p.to_string(), e))?;
                let mut r = berth_image::layer::decompress(f2)
                    .map_err(|e| BuildError::io(p.to_string(), e))?;
                let mut h = vec![0u8; 512];
                let n = read_up_to(&mut r, &mut h);
                h.truncate(n);
                is_tar(&h)
            }
        };
        if !archive {
            return Ok(None);
        }
        let dfd = dst
            .mkdir_all(dir, None)
            .map_err(|e| BuildError::Step(format!("ADD {p}: {e}")))?;
        let f = source
            .tree
            .open_file(p)
            .map_err(|e| BuildError::io(p.to_string(), e))?;
        let target = PathBuf::from(format!(
            "/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(&dfd)
        ));
        berth_image::layer::unpack(f, &target)
            .map_err(|e| BuildError::Step(format!("ADD {p}: extract: {e}")))?;
        Ok(Some(()))
    }

    /// The image a `COPY --from=` names: an earlier stage (name or index) or an image.
    fn from_image(&self, f: &str, stage_idx: usize, line: usize) -> Result<Image, BuildError> {
        let idx = if let Ok(n) = f.parse::<usize>() {
            if n >= stage_idx {
                return Err(BuildError::Invalid(format!(
                    "line {line}: COPY --from={n}: stage {n} is not an earlier stage"
                )));
            }
            Some(n)
        } else {
            self.stage_names
                .get(&f.to_lowercase())
                .copied()
                .filter(|j| *j < stage_idx)
        };
        match idx {
            Some(j) => self.stage_images[j].clone().ok_or_else(|| {
                BuildError::Invalid(format!("line {line}: COPY --from={f}: stage was not built"))
            }),
            None => self.store.resolve(f).map_err(|e| {
                BuildError::Invalid(format!(
                    "line {line}: COPY --from={f}: no stage or image of that name: {e}"
                ))
            }),
        }
    }

    fn apply_cli_labels(&mut self, img: Image) -> Result<Image, BuildError> {
        let extra = docker_extras(self.store, &img);
        let mut st = StageState {
            config: img.config.config().clone().unwrap_or_default(),
            author: img.config.author().clone(),
            image: Some(img),
            extra,
            args: BTreeMap::new(),
            shell: Vec::new(),
            cmd_set: true,
            fresh: false,
        };
        let mut labels = st.config.labels().clone().unwrap_or_default();
        let mut text = String::from("LABEL");
        for (k, v) in &self.opts.labels {
            labels.insert(k.clone(), v.clone());
            text.push_str(&format!(" {k}={v:?}"));
        }
        st.config.set_labels(Some(labels));
        let step = format!("{text} (--label)");
        if self.try_cache(&mut st, &step, &Inputs::new())?.is_some() {
            self.commit_step(&mut st, &step, Some(text), None, Inputs::new(), true)?;
        }
        st.image
            .ok_or_else(|| BuildError::Invalid("no image".into()))
    }
}

/// Docker's config fields the OCI config type drops (`Healthcheck`, `OnBuild`,
/// `Shell`), read from the image's stored config bytes.
fn docker_extras(store: &Store, img: &Image) -> Map<String, Value> {
    let raw: Value = store
        .read_blob(&img.id)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null);
    let mut extra = Map::new();
    for k in ["Healthcheck", "OnBuild", "Shell"] {
        if let Some(v) = raw.get("config").and_then(|c| c.get(k)) {
            if !v.is_null() {
                extra.insert(k.to_string(), v.clone());
            }
        }
    }
    extra
}

fn read_up_to(r: &mut dyn Read, buf: &mut [u8]) -> usize {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
    }
    n
}

/// Write a followed-symlink source as a regular file named `name` in `dir`.
fn write_file(
    dir: &std::os::fd::OwnedFd,
    name: &str,
    src: &mut fs::File,
    attrs: &Attrs,
    st: &nix::sys::stat::FileStat,
) -> io::Result<()> {
    use std::os::fd::AsFd;
    let _ = nix::unistd::unlinkat(
        Some(std::os::fd::AsRawFd::as_raw_fd(dir)),
        name,
        nix::unistd::UnlinkatFlags::NoRemoveDir,
    );
    let fd = berth_sys::openat2(
        dir.as_fd(),
        Path::new(name),
        (nix::fcntl::OFlag::O_CREAT | nix::fcntl::OFlag::O_EXCL | nix::fcntl::OFlag::O_WRONLY)
            .bits(),
        0o600,
        libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS,
    )?;
    let mut out = fs::File::from(fd);
    io::copy(src, &mut out)?;
    let (uid, gid) = attrs.owner.unwrap_or((0, 0));
    fsutil::chown_fd(out.as_fd(), uid, gid)?;
    use std::os::unix::fs::PermissionsExt;
    out.set_permissions(fs::Permissions::from_mode(
        attrs.mode.unwrap_or(st.st_mode & 0o7777),
    ))?;
    Ok(())
}

/// `FROM [--platform=x] image [AS name]` as written (for the step line).
fn stage_from_text(f: &dockerfile::From) -> String {
    let mut s = String::from("FROM ");
    if let Some(p) = &f.platform {
        s.push_str(&format!("--platform={p} "));
    }
    s.push_str(&f.image);
    if let Some(n) = &f.name {
        s.push_str(&format!(" AS {n}"));
    }
    s
}

/// EXPOSE words → `port/proto` keys (ranges expanded, as docker does).
pub fn expose_ports(w: &str) -> Result<Vec<String>, String> {
    let (ports, proto) = w.split_once('/').unwrap_or((w, "tcp"));
    let proto = proto.to_ascii_lowercase();
    if !["tcp", "udp", "sctp"].contains(&proto.as_str()) {
        return Err(format!("invalid proto: {proto}"));
    }
    let parse = |s: &str| {
        s.parse::<u16>()
            .map_err(|_| format!("invalid containerPort: {s}"))
    };
    let (a, b) = match ports.split_once('-') {
        Some((a, b)) => (parse(a)?, parse(b)?),
        None => {
            let p = parse(ports)?;
            (p, p)
        }
    };
    if b < a {
        return Err(format!("invalid port range: {ports}"));
    }
    Ok((a..=b).map(|p| format!("{p}/{proto}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expose_words() {
        assert_eq!(expose_ports("80").unwrap(), vec!["80/tcp"]);
        assert_eq!(expose_ports("53/UDP").unwrap(), vec!["53/udp"]);
        assert_eq!(
            expose_ports("8000-8002").unwrap(),
            vec!["8000/tcp", "8001/tcp", "8002/tcp"]
        );
        assert!(expose_ports("http").is_err());
        assert!(expose_ports("80/xyz").is_err());
        assert!(expose_ports("9-3").is_err());
    }
}
