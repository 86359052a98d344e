//! `vixdisk check [--repair]`: the engine's checker on one link, with documented exit codes.

use std::path::Path;

use serde::Serialize;
use vixDiskLib::Error;
use vixDiskLib::{CheckOutcome as Outcome, Connection, SalvageCounts};

use crate::failure::{CmdResult, Failure, OnFile};

#[derive(Serialize)]
struct ProblemOut {
    kind: String,
    detail: String,
    fixable: bool,
}

#[derive(Serialize)]
struct ReportOut {
    disk: String,
    /// clean, repaired, needs-repair or cant-repair.
    outcome: &'static str,
    problems: Vec<ProblemOut>,
    repaired: Vec<String>,
    /// For a damaged stream: what salvage kept (with --repair) or would keep.
    #[serde(skip_serializing_if = "Option::is_none")]
    salvage: Option<SalvageOut>,
}

#[derive(Serialize)]
struct SalvageOut {
    grains: u64,
    recovered_sectors: u64,
    lost_sectors: u64,
}

impl From<SalvageCounts> for SalvageOut {
    fn from(c: SalvageCounts) -> SalvageOut {
        SalvageOut {
            grains: c.grains,
            recovered_sectors: c.recovered_sectors,
            lost_sectors: c.lost_sectors,
        }
    }
}

fn outcome_name(o: Outcome) -> &'static str {
    match o {
        Outcome::Clean => "clean",
        Outcome::Repaired => "repaired",
        Outcome::NeedsRepair => "needs-repair",
        Outcome::CantRepair => "cant-repair",
        Outcome::Invalid => "invalid",
    }
}

/// Checks (and with `repair`, repairs) the link at `path`.
pub fn run(path: &Path, repair: bool, json: bool, force_share: bool) -> CmdResult {
    // The report below lists every problem; the engine's warnings would say each one again.
    let report = if force_share {
        super::warn_force_share(path);
        crate::engine_log::without_warnings(|| Connection::local().check_report(path, false, true))
    } else {
        crate::engine_log::without_warnings(|| {
            Connection::local().check_report(path, repair, false)
        })
    }
    .on(path)?;
    let outcome = report.outcome();
    let out = ReportOut {
        disk: path.display().to_string(),
        outcome: outcome_name(outcome),
        problems: report
            .problems
            .iter()
            .map(|p| ProblemOut {
                kind: format!("{:?}", p.kind),
                detail: p.detail.clone(),
                fixable: p.fixable,
            })
            .collect(),
        repaired: report.repaired.clone(),
        salvage: report.salvage.map(SalvageOut::from),
    };
    if json {
        say!(
            "{}",
            serde_json::to_string_pretty(&out).expect("plain data serializes")
        );
    } else {
        // On a clean verdict what was found are the notes of an interrupted session.
        let notes = outcome == Outcome::Clean;
        for p in &out.problems {
            let how = if notes {
                "note"
            } else if p.fixable {
                "problem (repairable)"
            } else {
                "problem (not repairable)"
            };
            say!("{how}: {}", p.detail);
        }
        for r in &out.repaired {
            say!("repaired: {r}");
        }
        if let Some(c) = &out.salvage {
            let (verb, tense) = if outcome == Outcome::Repaired {
                ("salvaged", "kept")
            } else {
                ("salvage (--repair)", "would keep")
            };
            say!(
                "{verb}: {tense} {} complete grains: {} sectors recovered, {} sectors lost",
                c.grains,
                c.recovered_sectors,
                c.lost_sectors
            );
        }
        match outcome {
            Outcome::Clean if !out.problems.is_empty() => say!(
                "{}: no problems found; the disk was not closed cleanly (--repair clears the notes)",
                out.disk
            ),
            Outcome::Clean => say!("{}: no problems found", out.disk),
            Outcome::Repaired => say!(
                "{}: {} problem(s) found and repaired",
                out.disk,
                out.problems.len()
            ),
            _ => {}
        }
    }
    let summary = || format!("{}: {} problem(s) found", out.disk, out.problems.len());
    match outcome {
        Outcome::Clean | Outcome::Repaired => Ok(()),
        Outcome::NeedsRepair => Err(Failure::NeedsRepair(summary())),
        Outcome::CantRepair => Err(Failure::CantRepair(summary())),
        Outcome::Invalid => Err(Failure::Engine {
            file: path.to_path_buf(),
            error: Error::InvalidDisk(format!(
                "{}; the stream holds what no repair can account for, nothing was changed",
                summary()
            )),
        }),
    }
}
