//! A tiny driver for the berth-image library with the same argument shape as the
//! `berth` CLI, for benchmarks and crash tests before the CLI exists:
//!
//! ```text
//! image_tool --root DIR load -i ARCHIVE|-      image_tool --root DIR save -o FILE REF...
//! image_tool --root DIR import FILE|- [REF]     image_tool --root DIR bootstrap [REF]
//! image_tool --root DIR images                  image_tool --root DIR rmi REF
//! ```

use berth_image::Store;
use std::io::Read;
use std::path::PathBuf;

fn main() {
    if let Err(e) = run() {
        eprintln!("image_tool: {e}");
        std::process::exit(1);
    }
}

fn input(path: &str) -> Result<Box<dyn Read>, Box<dyn std::error::Error>> {
    Ok(if path == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::fs::File::open(path)?)
    })
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (root, rest) = match args.split_first() {
        Some((flag, rest)) if flag == "--root" && !rest.is_empty() => {
            (PathBuf::from(&rest[0]), &rest[1..])
        }
        _ => (PathBuf::from("/var/lib/berth/image"), &args[..]),
    };
    let store = Store::open(&root)?;
    match rest.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["load", "-i", path] => {
            for img in store.load(input(path)?)? {
                println!("Loaded image: {} {}", img.id, img.repo_tags.join(","));
            }
        }
        ["save", "-o", path, refs @ ..] => store.save(refs, std::fs::File::create(path)?)?,
        ["import", path] => println!("{}", store.import(input(path)?, &[], None)?.id),
        ["import", path, tag] => println!("{}", store.import(input(path)?, &[], Some(tag))?.id),
        ["bootstrap"] => println!("{}", berth_image::bootstrap::busybox(&store, "busybox:latest")?.id),
        ["bootstrap", tag] => println!("{}", berth_image::bootstrap::busybox(&store, tag)?.id),
        ["images"] => {
            for img in store.list()? {
                println!("{} {} {}", img.short_id(), img.size, img.repo_tags.join(","));
            }
        }
        ["rmi", r] => {
            for line in store.remove(r, false, &|_| false)? {
                println!("{line}");
            }
        }
        other => return Err(format!("usage: image_tool --root DIR load -i FILE | save -o FILE REF... | import FILE [REF] | bootstrap [REF] | images | rmi REF (got {other:?})").into()),
    }
    Ok(())
}
