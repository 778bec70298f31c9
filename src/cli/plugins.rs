use std::path::PathBuf;

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum PluginsCommand {
    /// Every registered plugin: stage, name, version, where it comes from (static: compiled in; dynamic: loaded
    /// from a library), summary.
    List,
    /// A plugin's parameters with their defaults and one line of help each.
    Describe { name: String },
}

pub fn plugins(cmd: PluginsCommand, plugins: &[PathBuf]) -> anyhow::Result<()> {
    let registry = super::registry(plugins, &[], &[])?;
    match cmd {
        PluginsCommand::List => {
            let rows: Vec<[String; 5]> = registry
                .iter()
                .map(|(e, o)| {
                    [e.slot().stage().into(), e.name.into(), e.version.into(), o.to_string(), e.summary.into()]
                })
                .collect();
            print!("{}", table(&["stage", "name", "version", "origin", "summary"], &rows));
        }
        PluginsCommand::Describe { name } => {
            let found = registry.find_any(&name);
            if found.is_empty() {
                let all: Vec<&str> = registry.iter().map(|(e, _)| e.name).collect();
                anyhow::bail!("no plugin named `{name}`; known: {}", all.join(", "));
            }
            for (entry, origin) in found {
                println!(
                    "{} — {} for stage `{}` ({origin}, version {})",
                    entry.name,
                    entry.slot().kind(),
                    entry.slot().stage(),
                    entry.version
                );
                println!("{}\n", entry.summary);
                let rows: Vec<[String; 3]> =
                    (entry.describe)().into_iter().map(|d| [d.name, d.default, d.help]).collect();
                if rows.is_empty() {
                    println!("(no parameters)");
                } else {
                    print!("{}", table(&["parameter", "default", "help"], &rows));
                }
            }
        }
    }
    Ok(())
}

/// Left-aligned columns separated by two spaces; multi-line cells are flattened.
pub fn table<const N: usize>(header: &[&str; N], rows: &[[String; N]]) -> String {
    let flat = |s: &str| s.replace('\n', " ");
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(flat(cell).chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        padded.join("  ").trim_end().to_string() + "\n"
    };
    let mut out = line(header.iter().map(|h| h.to_string()).collect());
    for row in rows {
        out.push_str(&line(row.iter().map(|c| flat(c)).collect()));
    }
    out
}
