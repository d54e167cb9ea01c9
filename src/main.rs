//! The `pressing` command line: parses arguments, dispatches to a command, exits with its code.

mod cli;

use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use cli::args::{Cli, Command};
use cli::progress;
use pressing::exit;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    progress::init(cli.quiet, cli.verbose, cli.progress);
    match cli.command {
        Command::Run(args) => cli::press::run(args),
        Command::Validate(args) => cli::press::validate(args),
        Command::Publish(args) => cli::press::publish(args),
        Command::Unpublish(args) => cli::press::unpublish(args),
        Command::Qc { dir } => cli::press::qc(&dir),
        Command::Ladders { action } => cli::press::ladders(action),
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "pressing", &mut script);
            cli::data_exit(script)
        }
        Command::Man => {
            let mut page = Vec::new();
            match clap_mangen::Man::new(Cli::command()).render(&mut page) {
                Ok(()) => cli::data_exit(page),
                Err(e) => {
                    progress::error(format!("cannot write the man page: {e}"));
                    ExitCode::from(exit::OUTPUT)
                }
            }
        }
        Command::Submit(args) => cli::fleet::submit(args),
        Command::Worker(args) => cli::fleet::worker(*args),
        Command::Status(args) => cli::fleet::status(args),
    }
}
