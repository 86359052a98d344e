//! The change-tracking file against a model of its epochs, on histories large enough to have
//! many blocks and chunks (the query reads only chunks the fine summary names, grouping
//! neighbours; blocks in memory win over the file). Every answer must equal the model's:
//! the grains written after the id, exactly (the file is grain-granular).

use std::collections::BTreeMap;

use proptest::prelude::*;
use vixDiskLib::vmdk::track::{ChangeId, TrackFile};

const GRAINS: u64 = 150_000; // 146 blocks, 2344 chunks; not a multiple of either

#[derive(Debug, Clone)]
enum Op {
    /// Sectors written: first grain, grains.
    Write(u64, u64),
    Id,
    Flush,
    Reopen,
    Query(usize, u64, u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0..GRAINS, prop_oneof![1u64..4, 1u64..3000]).prop_map(|(g, n)| Op::Write(g, n)),
        2 => Just(Op::Id),
        1 => Just(Op::Flush),
        1 => Just(Op::Reopen),
        3 => (any::<usize>(), 0..GRAINS, 0..GRAINS).prop_map(|(i, a, b)| Op::Query(i, a, b)),
    ]
}

fn runs_to_grains(runs: &[(u64, u64)]) -> Vec<u64> {
    runs.iter().flat_map(|&(s, n)| s..s + n).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]
    #[test]
    fn queries_match_a_model_of_the_epochs(ops in proptest::collection::vec(op(), 1..60)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.vdltrack");
        TrackFile::create(&path, GRAINS, [7; 16], 1).unwrap();
        let mut t = TrackFile::open(&path, true, GRAINS, 1).unwrap();
        // The model: grain -> number of the first id that includes its last write.
        let mut epochs: BTreeMap<u64, u64> = BTreeMap::new();
        let mut ids: Vec<ChangeId> = vec![t.current_id().unwrap()];
        let mut pending = false;
        for op in ops {
            match op {
                Op::Write(g, n) => {
                    let n = n.min(GRAINS - g);
                    t.before_write(g * 128 + 5, n * 128 - 10, 1).unwrap();
                    let next = ids.last().unwrap().seq + 1;
                    for x in g..g + n {
                        epochs.insert(x, next);
                    }
                    pending = true;
                }
                Op::Id => {
                    let id = t.current_id().unwrap();
                    prop_assert_eq!(id.seq, ids.last().unwrap().seq + u64::from(pending));
                    pending = false;
                    ids.push(id);
                }
                Op::Flush => t.flush(1).unwrap(),
                Op::Reopen => {
                    t.close(1).unwrap();
                    t = TrackFile::open(&path, true, GRAINS, 1).unwrap();
                }
                Op::Query(i, a, b) => {
                    let id = ids[i % ids.len()];
                    t.check_id(&id).unwrap();
                    let (first, last) = (a.min(b), a.max(b) + 1);
                    let got = runs_to_grains(&t.changed_since(id.seq, first, last).unwrap());
                    let want: Vec<u64> = epochs
                        .range(first..last)
                        .filter(|&(_, &e)| e > id.seq)
                        .map(|(&g, _)| g)
                        .collect();
                    prop_assert_eq!(got, want);
                }
            }
        }
        // A read-only open sees what the last close made durable.
        t.close(1).unwrap();
        let mut ro = TrackFile::open(&path, false, GRAINS, 1).unwrap();
        let want: Vec<u64> = epochs.keys().copied().collect();
        prop_assert_eq!(runs_to_grains(&ro.changed_since(0, 0, GRAINS).unwrap()), want);
    }
}
