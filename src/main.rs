//! The `modelwatch` binary: parse the command line and hand over to the library.

use clap::Parser;

fn main() {
    let cli = modelwatch::cli::Cli::parse();
    std::process::exit(modelwatch::cli::main(cli));
}
