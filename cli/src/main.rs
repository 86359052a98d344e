//! `vixdisk`: a command-line tool for hosted VMDK disks on the vixdisklib engine (the Rust
//! API, not the C ABI). See docs/cli.md for the commands and exit codes.

/// `println!` that survives a closed pipe (see output.rs).
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::output::line(format_args!($($arg)*))
    };
}

mod cli;
mod commands;
mod engine_log;
mod failure;
mod generate;
mod interrupt;
mod output;
mod progress;
mod units;

use std::process::ExitCode;

use clap::Parser;

use cli::{BackupKind, Cli, Command, MetaAction};
use failure::CmdResult;

fn main() -> ExitCode {
    let cli = Cli::parse();
    interrupt::install();
    engine_log::install(cli.verbose);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("vixdisk: {failure}");
            failure.exit_code()
        }
    }
}

fn run(cli: Cli) -> CmdResult {
    let quiet = cli.quiet;
    use commands::*;
    match cli.command {
        Command::Info { disk, json, share } => info::run(&disk, json, share.force_share),
        Command::Map {
            disk,
            json,
            changed_since,
            share,
        } => map::run(&disk, json, changed_since.as_deref(), share.force_share),
        Command::Check {
            disk,
            repair,
            json,
            share,
        } => check::run(&disk, repair, json, share.force_share),
        Command::Create { disk, size, format } => create::run(&disk, size, &format.into(), quiet),
        Command::Child {
            parent,
            child,
            disk_type,
        } => links::child(&parent, &child, disk_type),
        Command::Discard { child } => links::discard(&child),
        Command::Attach { parent, child } => links::attach(&parent, &child),
        Command::Convert {
            source,
            target,
            source_format,
            format,
            overwrite,
        } => convert::run(&source, source_format, &target, &format, overwrite, quiet),
        Command::Grow {
            disk,
            size,
            keep_geometry,
        } => resize::grow(&disk, size, keep_geometry),
        Command::Shrink { disk } => resize::compact(&disk, true),
        Command::Defragment { disk } => resize::compact(&disk, false),
        Command::Rename { source, target } => links::rename(&source, &target),
        Command::Meta { action } => match action {
            MetaAction::List { disk } => meta::list(&disk),
            MetaAction::Get { disk, key } => meta::get(&disk, &key),
            MetaAction::Set { disk, key, value } => meta::set(&disk, &key, &value),
        },
        Command::Backup { kind } => {
            let (kind, disk, dir, base, snapshot) = match kind {
                BackupKind::Full {
                    disk,
                    dir,
                    snapshot,
                } => (backup::Kind::Full, disk, dir, None, snapshot),
                BackupKind::Incremental {
                    disk,
                    dir,
                    base,
                    snapshot,
                } => (backup::Kind::Incremental, disk, dir, Some(base), snapshot),
                BackupKind::Differential {
                    disk,
                    dir,
                    base,
                    snapshot,
                } => (backup::Kind::Differential, disk, dir, Some(base), snapshot),
            };
            backup::take(
                kind,
                &disk,
                &dir,
                base.as_deref(),
                snapshot.snapshot.as_deref(),
                snapshot.id_after_snapshot,
                quiet,
            )
        }
        Command::Restore {
            backup,
            target,
            format,
        } => backup::restore(&backup, &target, &format, quiet),
        Command::Commit { child } => links::commit(&child, quiet),
        Command::Changeid { disk, on, off } => links::change_id(&disk, on, off),
        Command::GenerateDocs { dir } => crate::generate::run(&dir),
    }
}
