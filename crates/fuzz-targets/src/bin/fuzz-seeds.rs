//! Writes every target's seed inputs into `fuzz/corpus/<target>/seed-<name>`
//! (or the directory given as the only argument, one subdirectory per
//! target), and prints how many for each.

fn main() -> std::io::Result<()> {
    let base = std::env::args_os().nth(1).map(std::path::PathBuf::from);
    for t in conn_fuzz_targets::TARGETS {
        let dir = match &base {
            Some(base) => base.join(t.name),
            None => conn_fuzz_targets::corpus_dir(t.name),
        };
        std::fs::create_dir_all(&dir)?;
        let seeds = (t.seeds)();
        for (name, input) in &seeds {
            std::fs::write(dir.join(format!("seed-{name}")), input)?;
        }
        println!("{}: {} seeds in {}", t.name, seeds.len(), dir.display());
    }
    Ok(())
}
