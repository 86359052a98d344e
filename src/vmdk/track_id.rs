//! Change ids and which content they name.
//!
//! The rule: one id names one content, everywhere. An id is `"UUID/N"`: the UUID names a
//! branch of history and N counts its contents. A branch is new each time tracking is turned
//! on, and at every CreateChild for the child (siblings of one base never share a branch).
//! The frozen parent's content gets its final id at the fork; the child's header lists the
//! ancestor branches and, for each, the ids that name contents it descends from, so those
//! stay answerable on the child and on every sibling. Epoch numbers continue across a fork
//! (the child's first id after the fork is the parent's final number plus one), which is why
//! "changed since an ancestor's id N" is still "epoch > N" on the child. Any other id is
//! refused: it belongs to another branch or disk, or was never issued here.

use super::track_layout::{Ancestor, FLAG_HANDED_OUT, Header, MAX_LINEAGE};
use crate::error::{Error, Result};

/// A change-id: the branch's UUID and a sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChangeId {
    /// Names the branch of history (new when tracking is turned on and at every fork).
    pub uuid: [u8; 16],
    /// Counts the contents of the history (continued across forks).
    pub seq: u64,
}

impl ChangeId {
    /// vSphere's shape: `"52 ab f5 21 86 ad f2 ff-5b ef c0 f2 3b 53 eb 3b/78"`.
    pub fn render(&self) -> String {
        format!("{}/{}", super::descriptor::format_uuid(self.uuid), self.seq)
    }

    /// Parses `render`'s shape (spaces and dashes between the hex bytes are optional).
    pub fn parse(text: &str) -> Option<ChangeId> {
        let (uuid_text, seq_text) = text.trim().rsplit_once('/')?;
        let hex: String = uuid_text
            .chars()
            .filter(|c| !matches!(c, ' ' | '-'))
            .collect();
        if hex.len() != 32 {
            return None;
        }
        let mut uuid = [0u8; 16];
        for (i, byte) in uuid.iter_mut().enumerate() {
            *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(ChangeId {
            uuid,
            seq: seq_text.trim().parse().ok()?,
        })
    }
}

/// Why `id` cannot be answered by the history `h`, or None if it can: its content is an
/// ancestor of (or equal to) the content `h` describes, and no change since it went unseen.
pub(crate) fn refusal(h: &Header, id: &ChangeId) -> Option<&'static str> {
    let in_range = if id.uuid == h.uuid {
        if id.seq > h.seq {
            return Some("is newer than anything this disk issued");
        }
        id.seq >= h.branch_from
    } else {
        match h.lineage.iter().rev().find(|a| a.uuid == id.uuid) {
            Some(a) => (a.from..=a.to).contains(&id.seq),
            None => {
                return Some(
                    "belongs to another disk, another snapshot branch (a sibling, or a parent \
                     written after the snapshot) or an earlier tracking history",
                );
            }
        }
    };
    if !in_range {
        Some("was issued on a branch of this history after this disk forked from it")
    } else if id.seq < h.valid_from {
        Some("predates a change the tracking could not see")
    } else {
        None
    }
}

/// The refusal of `id` as an error whose text ends in "do a full backup" (also logged).
pub(crate) fn check(h: &Header, id: &ChangeId) -> Result<()> {
    match refusal(h, id) {
        None => Ok(()),
        Some(why) => {
            let text = format!("change id {} {why}; do a full backup", id.render());
            crate::log::warn(&text);
            Err(Error::ChangeIdUnknown(text))
        }
    }
}

/// The id of the (not dirty) content `h` describes: a branch not written since its fork
/// still has its parent's final content, so it gives the parent's id (siblings and the frozen
/// parent agree on it), going back through forks that wrote nothing; else the branch's own.
pub(crate) fn id_of(h: &Header) -> ChangeId {
    let mut uuid = h.uuid;
    if h.seq == h.branch_from {
        for a in h.lineage.iter().rev() {
            if a.to != h.seq {
                break;
            }
            uuid = a.uuid;
            if a.from != h.seq {
                break;
            }
        }
    }
    ChangeId { uuid, seq: h.seq }
}

/// Turns the header of a history whose content has the final id `h.seq` (not dirty) into
/// the header of a new branch `uuid` forked from it.
pub(crate) fn fork(h: &mut Header, uuid: [u8; 16]) {
    // A branch unwritten since its own fork never gave out an id of its own (`id_of`): its
    // UUID need not be remembered, and chains of such forks do not fill the lineage.
    if id_of(h).uuid == h.uuid {
        h.lineage.push(Ancestor {
            uuid: h.uuid,
            from: h.branch_from,
            to: h.seq,
        });
    }
    if h.lineage.len() > MAX_LINEAGE {
        // The oldest ancestor's ids become refused (never wrongly answered).
        h.lineage.remove(0);
    }
    h.uuid = uuid;
    h.branch_from = h.seq;
    h.flags &= !FLAG_HANDED_OUT;
}

/// A parent taking over its committed child's history `h`: if no id with the child's own
/// UUID was ever handed out and the child forked from the parent's own branch, the parent
/// takes that branch back (Commit requires the parent unchanged since the fork, so nothing
/// else continues it), so backup cycles of snapshot and commit do not grow the lineage.
pub(crate) fn rejoin(h: &mut Header, parent_branch: [u8; 16]) {
    if h.flags & FLAG_HANDED_OUT != 0 || h.lineage.last().is_none_or(|a| a.uuid != parent_branch) {
        return;
    }
    if let Some(a) = h.lineage.pop() {
        h.uuid = a.uuid;
        h.branch_from = a.from;
        // The parent's own ids were handed out, or may have been: keep them answerable.
        h.flags |= FLAG_HANDED_OUT;
    }
}
