//! `callvault env-table`: the configuration table, from the clap definitions.

use super::Cli;

/// Every environment variable the command line reads, as a Markdown table
/// generated from the clap definitions themselves (`callvault env-table`;
/// `docs/configuration.md` holds a copy that a test keeps identical).
pub fn env_table() -> String {
    use std::collections::BTreeMap;

    use clap::CommandFactory as _;

    struct Row {
        flag: String,
        default: String,
        help: String,
        commands: Vec<String>,
    }
    fn walk(cmd: &clap::Command, path: &str, rows: &mut BTreeMap<String, Row>) {
        for arg in cmd.get_arguments() {
            let Some(env) = arg.get_env().and_then(|e| e.to_str()) else {
                continue;
            };
            let row = rows.entry(env.to_owned()).or_insert_with(|| Row {
                flag: arg
                    .get_long()
                    .map(|l| format!("`--{l}`"))
                    .unwrap_or_default(),
                default: arg
                    .get_default_values()
                    .iter()
                    .filter_map(|v| v.to_str())
                    .map(|v| format!("`{v}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
                help: arg
                    .get_help()
                    .map(|h| {
                        h.to_string()
                            .replace('\n', " ")
                            .replace('|', "\\|")
                            .replace('<', "&lt;")
                            .replace('>', "&gt;")
                    })
                    .unwrap_or_default(),
                commands: Vec::new(),
            });
            // A global flag of a subcommand belongs to that subcommand (and
            // its own subcommands), not to every command.
            let here = if path.is_empty() {
                "all".to_owned()
            } else {
                path.to_owned()
            };
            if !row.commands.contains(&here) && !row.commands.iter().any(|c| c == "all") {
                row.commands.push(here);
            }
        }
        for sub in cmd.get_subcommands() {
            if sub.is_hide_set() {
                continue;
            }
            let name = if path.is_empty() {
                sub.get_name().to_owned()
            } else {
                format!("{path} {}", sub.get_name())
            };
            walk(sub, &name, rows);
        }
    }
    let mut rows = BTreeMap::new();
    walk(&Cli::command(), "", &mut rows);
    let mut out =
        String::from("| variable | flag | default | commands | meaning |\n|---|---|---|---|---|\n");
    for (env, row) in rows {
        let commands = if row.commands.iter().any(|c| c == "all") {
            "all".to_owned()
        } else {
            row.commands.join(", ")
        };
        out.push_str(&format!(
            "| `{env}` | {} | {} | {commands} | {} |\n",
            row.flag, row.default, row.help
        ));
    }
    out
}
