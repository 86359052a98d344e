//! Grain directories and tables of one sparse extent: both trees are loaded leniently, every
//! directory index and table entry is decided from the copies that are sound, and the writes
//! that make both trees equal and valid are planned.
//!
//! Decisions, in order:
//! 1. A directory entry is unusable if it is unreadable (directory past the end of the file),
//!    its table lies past the end of the file or over the header, descriptor or a directory, or
//!    its table overlaps another table (the copy at its standard place, or with no bad
//!    entries, wins). Both copies 0 means no table; a table found at the standard place then
//!    is taken back, otherwise empty tables are allocated.
//! 2. An entry is bad if its grain starts past the end of the file, below the data area, or
//!    over metadata. The first sound non-zero value among the copies is used (primary first).
//! 3. Grains claimed twice: claims both copies agree on go first, in table order; a later claim
//!    falls back to its other copy's value if that is free, else it gets its own copy of the
//!    grain (so its sectors keep reading what they read).
//! 4. Rebuilt tables go to their standard place if it is free, else are appended.

use std::collections::BTreeMap;

use super::tree::{COPY, Extent, Gte, Loaded, Ranges, TableCopy, Tree, load, sector_u32, to_bytes};
use super::{FilePlan, Findings, ProblemKind};
use crate::error::Result;

/// How many example entries a finding quotes.
const EXAMPLES: usize = 4;

/// A grain reference to be checked for sharing.
struct Claim {
    i: usize,
    j: usize,
    start: u64,
    alt: Option<u64>,
    strong: bool,
}

/// A bad entry, for the grouped findings.
struct BadEntry {
    kind: ProblemKind,
    copies: &'static str,
    j: usize,
    value: u32,
    replaced: bool,
}

fn entries(n: usize) -> String {
    if n == 1 {
        "1 entry".into()
    } else {
        format!("{n} entries")
    }
}

/// Checks both trees of `x`; plans table, directory and extension writes into `plan`.
pub(super) fn check_tree(x: &Extent, f: &mut Findings, plan: &mut FilePlan) -> Result<()> {
    let Loaded { tree, dirs, slots } = load(x)?;
    let t = &tree;
    // Metadata the grains must stay clear of: fixed areas and every table still in use.
    let mut meta = Ranges::default();
    for (&s, &e) in &t.fixed.0 {
        meta.insert(s, e);
    }
    for pair in &slots {
        for c in pair {
            if let TableCopy::Table { at, .. } = c {
                meta.insert(*at, at + t.gts);
            }
        }
    }
    let mut finals: Vec<Option<Vec<u32>>> = vec![None; t.n];
    let mut claims = Vec::new();
    for (i, fin) in finals.iter_mut().enumerate() {
        *fin = decide_index(t, i, &slots[i], &meta, &mut claims, f);
    }
    let (grains, copies) = resolve_sharing(t, claims, &mut finals, f);
    if f.unrepairable() {
        return Ok(());
    }
    plan_writes(
        t,
        &slots,
        &dirs,
        &mut finals,
        &copies,
        &meta,
        &grains,
        f,
        plan,
    )
}

/// Steps 1 and 2 for index `i`: directory findings, entry choice, claims for step 3.
fn decide_index(
    t: &Tree,
    i: usize,
    pair: &[TableCopy; 2],
    meta: &Ranges,
    claims: &mut Vec<Claim>,
    f: &mut Findings,
) -> Option<Vec<u32>> {
    let p = &t.p;
    let cover = t.gs * t.per as u64;
    let span = format!(
        "virtual sectors {}..{}",
        i as u64 * cover,
        (i as u64 + 1) * cover
    );
    let tabs: Vec<(usize, &Vec<u32>)> = (0..t.copies)
        .filter_map(|c| match &pair[c] {
            TableCopy::Table { t: tab, .. } => Some((c, tab)),
            _ => None,
        })
        .collect();
    if tabs.is_empty() {
        let reasons: Vec<String> = (0..t.copies)
            .filter_map(|c| match &pair[c] {
                TableCopy::Damaged(r) => Some(format!("{} entry {r}", COPY[c])),
                _ => None,
            })
            .collect();
        if !reasons.is_empty() {
            f.fatal(
                ProblemKind::LostTable,
                format!(
                    "{p}: grain directory entry {i} is unusable in every copy ({}): {span} cannot be recovered",
                    reasons.join("; ")
                ),
            );
            return None;
        }
        f.fixable(
            ProblemKind::MissingTable,
            format!("{p}: grain directory entry {i} is 0 (no grain table for {span})"),
            format!("{p}: allocated empty grain tables for directory entry {i}"),
        );
        return Some(vec![0; t.per]);
    }
    let source = COPY[tabs[0].0];
    let recovered = pair.iter().any(|c| {
        matches!(
            c,
            TableCopy::Table {
                recovered: true,
                ..
            }
        )
    });
    for c in 0..t.copies {
        match &pair[c] {
            TableCopy::Absent if recovered => {}
            TableCopy::Damaged(r) => f.fixable(
                ProblemKind::DirectoryEntry,
                format!("{p}: {} grain directory entry {i} {r}", COPY[c]),
                format!(
                    "{p}: rebuilt {} grain table {i} from the {source} copy",
                    COPY[c]
                ),
            ),
            TableCopy::Absent => f.fixable(
                ProblemKind::RedundantDirectory,
                format!(
                    "{p}: grain directory entry {i} is 0 in the {} directory but not in the other",
                    COPY[c]
                ),
                format!(
                    "{p}: rebuilt {} grain table {i} from the {source} copy",
                    COPY[c]
                ),
            ),
            TableCopy::Table {
                at,
                t: tab,
                recovered: true,
            } => f.fixable(
                ProblemKind::DirectoryEntry,
                format!(
                    "{p}: grain directory entry {i} is 0 in every copy, but its {} table at sector {at} maps {} grains",
                    COPY[c],
                    tab.iter().filter(|&&v| v != 0).count()
                ),
                format!("{p}: pointed directory entry {i} back at its table at sector {at}"),
            ),
            TableCopy::Table { .. } => {}
        }
    }
    if tabs.len() == 2 && tabs[0].1 != tabs[1].1 {
        let differ = (0..t.per).filter(|&j| tabs[0].1[j] != tabs[1].1[j]).count();
        // Copies are (primary, redundant) in that order. Only new entries missing from the
        // redundant copy is the trace of a Flush stopped between the two writes.
        let (primary, redundant) = (tabs[0].1, tabs[1].1);
        let behind =
            tabs[0].0 == 0 && (0..t.per).all(|j| primary[j] == redundant[j] || redundant[j] == 0);
        let (kind, detail) = if behind {
            (
                ProblemKind::RedundantBehind,
                format!(
                    "{p}: grain table {i}: the redundant copy lacks {} the primary has (a Flush was interrupted between the copies)",
                    entries(differ)
                ),
            )
        } else {
            (
                ProblemKind::RedundantTable,
                format!(
                    "{p}: grain table {i}: {} differ between the primary and redundant copies",
                    entries(differ)
                ),
            )
        };
        f.fixable(
            kind,
            detail,
            format!("{p}: made both copies of grain table {i} identical"),
        );
    }
    let mut out = vec![0u32; t.per];
    let mut bad = Vec::new();
    for j in 0..t.per {
        let vals: Vec<(usize, u32, Gte)> = tabs
            .iter()
            .map(|&(c, tab)| (c, tab[j], t.classify(tab[j], meta)))
            .collect();
        let good: Vec<&(usize, u32, Gte)> = vals
            .iter()
            .filter(|v| matches!(v.2, Gte::Data(_) | Gte::Zeroed))
            .collect();
        let all_same = vals.iter().all(|v| v.1 == vals[0].1);
        for (k, &(c, v, g)) in vals.iter().enumerate() {
            let kind = match g {
                Gte::PastEnd => ProblemKind::GrainPastEnd,
                Gte::Metadata => ProblemKind::GrainInMetadata,
                _ => continue,
            };
            if all_same && k > 0 {
                continue; // reported once for every copy
            }
            let copies = if all_same && vals.len() == 2 {
                "both copies"
            } else {
                COPY[c]
            };
            bad.push(BadEntry {
                kind,
                copies,
                j,
                value: v,
                replaced: !good.is_empty(),
            });
        }
        let Some(&&(_, v, g)) = good.first() else {
            continue;
        };
        out[j] = v;
        if let Gte::Data(start) = g {
            let alt = good.get(1).and_then(|o| match o.2 {
                Gte::Data(s) if s != start => Some(s),
                _ => None,
            });
            claims.push(Claim {
                i,
                j,
                start,
                alt,
                strong: vals.len() == 2 && all_same,
            });
        }
    }
    report_bad_entries(t, i, &bad, f);
    Some(out)
}

fn report_bad_entries(t: &Tree, i: usize, bad: &[BadEntry], f: &mut Findings) {
    let p = &t.p;
    let mut groups: Vec<(ProblemKind, &str)> = Vec::new();
    for b in bad {
        if !groups.contains(&(b.kind, b.copies)) {
            groups.push((b.kind, b.copies));
        }
    }
    for (kind, copies) in groups {
        let members: Vec<&BadEntry> = bad
            .iter()
            .filter(|b| b.kind == kind && b.copies == copies)
            .collect();
        let examples: Vec<String> = members
            .iter()
            .take(EXAMPLES)
            .map(|b| format!("entry {} = sector {}", b.j, b.value))
            .collect();
        let replaced = members.iter().filter(|b| b.replaced).count();
        let dropped = members.len() - replaced;
        let what = if kind == ProblemKind::GrainPastEnd {
            format!("past the end of the file ({} bytes)", t.x.len)
        } else {
            "into metadata (below the data area or over the header, descriptor, a directory or a table)"
                .into()
        };
        let mut action = format!("{p}: grain table {i}:");
        if replaced > 0 {
            action.push_str(&format!(" took {} from the sound copy", entries(replaced)));
        }
        if dropped > 0 {
            action.push_str(&format!(
                " zeroed {} (those grains now read as zeros, or from the parent)",
                entries(dropped)
            ));
        }
        f.fixable(
            kind,
            format!(
                "{p}: grain table {i} ({copies}): {} point {what}: {}",
                entries(members.len()),
                examples.join(", ")
            ),
            action,
        );
    }
}

/// A later claim on a grain another entry keeps: the entry gets a copy of that grain.
struct GrainCopy {
    i: usize,
    j: usize,
    from: u64,
}

/// Step 3. Returns the grains in use, as sector ranges, and the entries that get a copy of the
/// grain they share (so every virtual sector keeps reading what it read before the repair).
fn resolve_sharing(
    t: &Tree,
    mut claims: Vec<Claim>,
    finals: &mut [Option<Vec<u32>>],
    f: &mut Findings,
) -> (Ranges, Vec<GrainCopy>) {
    let mut copies = Vec::new();
    let p = &t.p;
    let gs = t.gs;
    claims.sort_by_key(|c| (!c.strong, c.i, c.j));
    let mut owner: BTreeMap<u64, (usize, usize)> = BTreeMap::new();
    let holder = |owner: &BTreeMap<u64, (usize, usize)>, s: u64| {
        owner
            .range(s.saturating_sub(gs - 1)..s + gs)
            .next()
            .map(|(&k, &v)| (k, v))
    };
    for cl in claims {
        let Some((at, (oi, oj))) = holder(&owner, cl.start) else {
            owner.insert(cl.start, (cl.i, cl.j));
            continue;
        };
        let table = finals[cl.i]
            .as_mut()
            .expect("claims come from decided tables");
        if let Some(alt) = cl.alt.filter(|&a| holder(&owner, a).is_none()) {
            table[cl.j] = alt as u32;
            owner.insert(alt, (cl.i, cl.j));
            continue;
        }
        // Zeroing the entry would change what its sectors read (zeros, or the parent's data):
        // it gets its own copy of the grain instead, placed in `plan_writes`.
        table[cl.j] = 0;
        copies.push(GrainCopy {
            i: cl.i,
            j: cl.j,
            from: cl.start,
        });
        let vsec = |i: usize, j: usize| (i * t.per + j) as u64 * gs;
        f.fixable(
            ProblemKind::SharedGrain,
            format!(
                "{p}: the grain at sector {at} is referenced by grain table {oi} entry {oj} (virtual sector {}) and by table {} entry {} (virtual sector {})",
                vsec(oi, oj),
                cl.i,
                cl.j,
                vsec(cl.i, cl.j)
            ),
            format!(
                "{p}: kept the first reference to the grain at sector {at} (table {oi} entry {oj}) and gave table {} entry {} a copy of the grain at sector {}: virtual sectors {}..{} read as before but no longer alias it",
                cl.i,
                cl.j,
                cl.start,
                vsec(cl.i, cl.j),
                vsec(cl.i, cl.j) + gs
            ),
        );
    }
    let mut grains = Ranges::default();
    for &s in owner.keys() {
        grains.insert(s, s + gs);
    }
    (grains, copies)
}

/// Step 4 and the plan: table locations, table and directory writes, file extension.
#[allow(clippy::too_many_arguments)]
fn plan_writes(
    t: &Tree,
    slots: &[[TableCopy; 2]],
    dirs: &[(Vec<u32>, usize)],
    finals: &mut [Option<Vec<u32>>],
    copies: &[GrainCopy],
    meta: &Ranges,
    grains: &Ranges,
    f: &mut Findings,
    plan: &mut FilePlan,
) -> Result<()> {
    let x = t.x;
    let p = &t.p;
    let h = x.h;
    let file_sectors = x.len.div_ceil(512);
    let grain_end = grains.0.values().next_back().copied().unwrap_or(0);
    // Everything that must not be overwritten by a table placed now.
    let mut occupied = Ranges::default();
    for r in [meta, grains] {
        for (&s, &e) in &r.0 {
            occupied.insert(s, e);
        }
    }
    let mut cursor = file_sectors
        .max(t.data_start)
        .max(grain_end)
        .next_multiple_of(t.gs);
    // Copies of shared grains go first, at the end of the file (written before any table
    // refers to them).
    for c in copies {
        let at = cursor;
        cursor += t.gs;
        occupied.insert(at, at + t.gs);
        let table = finals[c.i]
            .as_mut()
            .expect("copies come from decided tables");
        table[c.j] = sector_u32(x.path, at)?;
        plan.grain_copies.push((c.from * 512, at * 512, t.gs * 512));
    }
    let mut new_dirs: Vec<Vec<u32>> = dirs.iter().map(|d| d.0.clone()).collect();
    for (i, fin) in finals.iter().enumerate() {
        let Some(fin) = fin else { continue };
        for c in 0..t.copies {
            let (at, current) = match &slots[i][c] {
                TableCopy::Table { at, t: tab, .. } => (*at, Some(tab)),
                _ => {
                    let (s, e) = t.slot(i, c);
                    let at = if s > 0 && e <= h.overhead && !occupied.overlaps(s, e) {
                        s
                    } else {
                        let at = cursor;
                        cursor += t.gts;
                        at
                    };
                    occupied.insert(at, at + t.gts);
                    (at, None)
                }
            };
            if current != Some(fin) {
                plan.tables.push((at * 512, to_bytes(fin)));
            }
            new_dirs[c][i] = sector_u32(x.path, at)?;
        }
    }
    for c in 0..t.copies {
        let (old, readable) = &dirs[c];
        if new_dirs[c] != *old || *readable < t.n {
            plan.directories
                .push((t.dir_at[c] * 512, to_bytes(&new_dirs[c])));
        }
    }
    // The file must hold its metadata area and every grain it keeps.
    let gd_end = t.dir_at[..t.copies]
        .iter()
        .map(|d| d + h.gd_sectors())
        .max()
        .unwrap_or(0);
    let meta_end = t.data_start.max(gd_end);
    let need = meta_end.max(grain_end) * 512;
    if need > x.len {
        let why = if grain_end * 512 > x.len {
            format!(
                "the grain ending at sector {grain_end} extends past the end of the file ({} bytes)",
                x.len
            )
        } else {
            format!(
                "the file ({} bytes) ends inside its metadata area ({} sectors)",
                x.len, meta_end
            )
        };
        f.fixable(
            ProblemKind::ShortExtent,
            format!("{p}: {why}"),
            format!("{p}: extended the file with zeros to {need} bytes"),
        );
        plan.extend_to = Some(need);
    }
    Ok(())
}
