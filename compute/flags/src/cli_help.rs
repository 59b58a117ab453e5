//! What every command line of the workspace must say about itself: each verb an
//! about line of its own, each flag and argument a help line. [`problems`] walks a
//! clap definition and lists what is missing; each binary's tests assert the list
//! is empty, so a verb added without a description fails the build's tests.
//!
//! It reads definitions only: it never parses arguments or prints help.

use clap::{ArgAction, Command};
use std::collections::BTreeMap;

/// Every problem of `cmd` and its subcommands, one sentence each, naming the verb
/// path and the flag: a subcommand without an about line, an about line that spans
/// several lines or ends with a period (as a verbatim doc comment's does), two subcommands sharing one about line (a shared argument
/// struct's doc comment leaking into every verb that uses it), and an argument
/// without help. Clap's own `--help`, `--version` and `help` are not looked at.
pub fn problems(cmd: &Command) -> Vec<String> {
    let mut out = Vec::new();
    let mut abouts: BTreeMap<String, Vec<String>> = BTreeMap::new();
    walk(cmd, cmd.get_name(), true, &mut out, &mut abouts);
    for (about, verbs) in abouts {
        if verbs.len() > 1 {
            out.push(format!(
                "{} share the about line {about:?}: give each verb its own",
                verbs.join(", ")
            ));
        }
    }
    out
}

fn walk(
    cmd: &Command,
    path: &str,
    top: bool,
    out: &mut Vec<String>,
    abouts: &mut BTreeMap<String, Vec<String>>,
) {
    let about = cmd
        .get_about()
        .map(|a| a.to_string().trim().to_owned())
        .unwrap_or_default();
    if about.is_empty() {
        out.push(format!("{path}: no about line (a doc comment on the verb)"));
    } else if about.contains('\n') {
        out.push(format!("{path}: the about line spans several lines"));
    } else if about.ends_with('.') {
        out.push(format!(
            "{path}: the about line ends with a period (clap's own lines do not)"
        ));
    } else if !top {
        abouts.entry(about).or_default().push(path.to_owned());
    }
    for arg in cmd.get_arguments() {
        if matches!(
            arg.get_action(),
            ArgAction::Help | ArgAction::HelpShort | ArgAction::HelpLong | ArgAction::Version
        ) {
            continue;
        }
        let help = arg
            .get_help()
            .or_else(|| arg.get_long_help())
            .map(|h| h.to_string())
            .unwrap_or_default();
        if help.trim().is_empty() {
            let name = match (arg.get_long(), arg.get_short()) {
                (Some(long), _) => format!("--{long}"),
                (None, Some(short)) => format!("-{short}"),
                (None, None) => format!("<{}>", arg.get_id().as_str().to_uppercase()),
            };
            out.push(format!(
                "{path} {name}: no help (a doc comment on the field)"
            ));
        }
    }
    for sub in cmd.get_subcommands() {
        walk(
            sub,
            &format!("{path} {}", sub.get_name()),
            false,
            out,
            abouts,
        );
    }
}

#[doc(hidden)]
pub use clap::CommandFactory;

/// The tests every binary of the workspace runs on its command line `$cli` (a
/// `clap::Parser` in the calling module): [`problems`] finds nothing, and clap's
/// own consistency checks pass. One line at the bottom of each binary's command
/// line module: `#[cfg(test)] compute_flags::cli_help_tests!(Cli);` (the attribute
/// lets crates that have compute-flags as a dev-dependency only use it).
#[macro_export]
macro_rules! cli_help_tests {
    ($cli:ident) => {
        #[cfg(test)]
        mod cli_help_tests {
            use $crate::cli_help::CommandFactory;

            #[test]
            fn every_verb_and_flag_explains_itself() {
                assert_eq!(
                    $crate::cli_help::problems(&<super::$cli as CommandFactory>::command()),
                    Vec::<String>::new()
                );
            }

            #[test]
            fn the_command_line_is_consistent() {
                <super::$cli as CommandFactory>::command().debug_assert();
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser, Subcommand};

    /// Well described: nested verbs, a flattened struct, a positional argument.
    #[derive(Parser)]
    #[command(name = "good", about = "A tool that explains itself")]
    struct Good {
        /// Be chatty.
        #[arg(long, global = true)]
        verbose: bool,
        #[command(subcommand)]
        command: GoodCommand,
    }

    #[derive(Subcommand)]
    enum GoodCommand {
        /// Start the thing.
        Start(Shared),
        /// Stop the thing.
        Stop(Shared),
        /// Manage passwords.
        Password {
            #[command(subcommand)]
            action: GoodPassword,
        },
    }

    #[derive(Subcommand)]
    enum GoodPassword {
        /// Print the password.
        Get,
    }

    /// One instance (this doc comment must not become every verb's about line).
    #[derive(clap::Args)]
    struct Shared {
        /// The instance's name or uuid.
        instance: String,
    }

    /// The leak the check exists for: verbs without their own doc comment take
    /// the shared struct's, and undocumented fields have no help.
    #[derive(Parser)]
    #[command(name = "bad", about = "A tool that does not")]
    struct Bad {
        #[command(subcommand)]
        command: BadCommand,
    }

    #[derive(Subcommand)]
    enum BadCommand {
        Start(Shared),
        Stop(Shared),
        List {
            #[arg(long)]
            format: Option<String>,
        },
        /// Nested verbs are checked too.
        Password {
            #[command(subcommand)]
            action: BadPassword,
        },
    }

    #[derive(Subcommand)]
    enum BadPassword {
        Get { uuid: String },
    }

    #[test]
    fn a_described_command_line_has_no_problems() {
        assert_eq!(problems(&Good::command()), Vec::<String>::new());
    }

    #[test]
    fn shared_about_lines_missing_about_lines_and_missing_help_are_each_named() {
        assert_eq!(
            problems(&Bad::command()),
            [
                "bad list: no about line (a doc comment on the verb)",
                "bad list --format: no help (a doc comment on the field)",
                "bad password get: no about line (a doc comment on the verb)",
                "bad password get <UUID>: no help (a doc comment on the field)",
                "bad start, bad stop share the about line \"One instance (this doc comment \
                 must not become every verb's about line)\": give each verb its own",
            ]
        );
    }

    #[test]
    fn a_multi_line_about_is_a_problem() {
        let cmd = Command::new("x")
            .about("x")
            .subcommand(Command::new("y").about("first line\nsecond line"));
        assert_eq!(problems(&cmd), ["x y: the about line spans several lines"]);
    }

    #[test]
    fn an_about_line_ending_with_a_period_is_a_problem() {
        #[derive(Parser)]
        #[command(name = "x", about = "X")]
        struct X {
            #[command(subcommand)]
            command: XCommand,
        }
        #[derive(Subcommand)]
        enum XCommand {
            Render(RenderArgs),
        }
        /// Render a thing.
        ///
        /// Verbatim doc comments keep the first line's period.
        #[derive(clap::Args)]
        #[command(verbatim_doc_comment)]
        struct RenderArgs {}
        assert_eq!(
            problems(&X::command()),
            ["x render: the about line ends with a period (clap's own lines do not)"]
        );
    }

    #[test]
    fn the_top_command_needs_an_about_line_too() {
        let cmd = Command::new("x").subcommand(Command::new("y").about("Why"));
        assert_eq!(
            problems(&cmd),
            ["x: no about line (a doc comment on the verb)"]
        );
    }
}
