//! The `modelwatch` binary: parse the command line and hand over to the library.

use clap::Parser;

fn main() {
    let code = match modelwatch::cli::Cli::try_parse() {
        Ok(cli) => modelwatch::cli::main(cli),
        Err(e) => modelwatch::cli::parse_failure(e),
    };
    std::process::exit(code);
}
