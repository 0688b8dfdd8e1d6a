use aho_corasick::{AhoCorasick, MatchKind};
use proptest::prelude::*;

use super::*;

fn searcher(patterns: &[&[u8]]) -> FormSearcher {
    FormSearcher::new(patterns).expect("small sets always build")
}

fn found(searcher: &FormSearcher, haystack: &[u8]) -> Vec<(usize, usize, usize)> {
    searcher
        .find_iter(haystack)
        .map(|m| (m.start, m.end, m.pattern))
        .collect()
}

/// The definition: at each position the longest pattern starting there (the first listed on a
/// tie), then on from its end; otherwise on by one byte.
fn naive(patterns: &[&[u8]], haystack: &[u8]) -> Vec<(usize, usize, usize)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < haystack.len() {
        let longest = patterns
            .iter()
            .enumerate()
            .filter(|(_, p)| haystack[at..].starts_with(p))
            .max_by_key(|(id, p)| (p.len(), std::cmp::Reverse(*id)));
        match longest {
            Some((id, p)) => {
                out.push((at, at + p.len(), id));
                at += p.len();
            }
            None => at += 1,
        }
    }
    out
}

fn aho_corasick(patterns: &[&[u8]], haystack: &[u8]) -> Vec<(usize, usize, usize)> {
    AhoCorasick::builder()
        .match_kind(MatchKind::LeftmostLongest)
        .build(patterns)
        .expect("builds")
        .find_iter(haystack)
        .map(|m| (m.start(), m.end(), m.pattern().as_usize()))
        .collect()
}

#[test]
fn finds_every_occurrence_at_any_alignment() {
    let pattern: &[u8] = b"secret-0123456789";
    let s = searcher(&[pattern]);
    for lead in 0..9 {
        let mut haystack = vec![b'.'; lead];
        haystack.extend_from_slice(pattern);
        haystack.extend_from_slice(b" and ");
        haystack.extend_from_slice(pattern);
        let second = lead + pattern.len() + 5;
        assert_eq!(
            found(&s, &haystack),
            vec![
                (lead, lead + pattern.len(), 0),
                (second, second + pattern.len(), 0)
            ],
            "lead {lead}"
        );
    }
}

#[test]
fn the_shortest_pattern_picks_gram_width_and_stride() {
    let shape = |len: usize| {
        let pattern = vec![b'x'; len];
        let s = searcher(&[&pattern, b"a much longer pattern than that one"]);
        (s.width, s.stride)
    };
    assert_eq!(shape(40), (8, 8));
    assert_eq!(shape(15), (8, 8));
    assert_eq!(shape(14), (8, 4));
    assert_eq!(shape(11), (8, 4));
    assert_eq!(shape(10), (7, 4));
    assert_eq!(shape(8), (5, 4));
    assert_eq!(shape(3), (1, 3));
}

#[test]
fn a_pattern_at_the_very_end_is_found() {
    let s = searcher(&[b"12345678", b"abcdefghijklmnop"]);
    assert_eq!(found(&s, b"xx12345678"), vec![(2, 10, 0)]);
    assert_eq!(found(&s, b"12345678"), vec![(0, 8, 0)]);
    assert_eq!(found(&s, b"-abcdefghijklmnop"), vec![(1, 17, 1)]);
    assert_eq!(found(&s, b"1234567"), vec![]);
}

#[test]
fn overlapping_patterns_resolve_leftmost_then_longest() {
    let patterns: [&[u8]; 3] = [b"abcdefgh", b"abcdefghijkl", b"efghijklmnop"];
    let s = searcher(&patterns);
    let haystack = b"--abcdefghijklmnop--";
    assert_eq!(found(&s, haystack), vec![(2, 14, 1)]);
    assert_eq!(found(&s, haystack), naive(&patterns, haystack));
    assert_eq!(found(&s, b"abcdefgh"), vec![(0, 8, 0)]);
}

#[test]
fn patterns_sharing_a_long_prefix_are_anchored_apart() {
    let owned: Vec<Vec<u8>> = (0..200)
        .map(|i| format!("sk-proj-shared-prefix-{i:04}-tail").into_bytes())
        .collect();
    let patterns: Vec<&[u8]> = owned.iter().map(Vec::as_slice).collect();
    let s = searcher(&patterns);
    // Every anchor avoids the 22 bytes all patterns share.
    let anchors = choose_anchors(&patterns, s.width, s.mask, s.stride);
    assert!(anchors.iter().all(|&a| a + s.width > 22), "{anchors:?}");
    let haystack = [b"x ".as_slice(), &owned[123], b" y"].concat();
    assert_eq!(found(&s, &haystack), vec![(2, 2 + owned[123].len(), 123)]);
}

#[test]
fn patterns_sharing_all_but_a_few_bytes_share_one_entry_per_gram() {
    // 1,000 forms alike but for their last 8 bytes: the anchor window (15 bytes) cannot avoid
    // the shared part, so its shared grams become one entry each, keyed by the whole form.
    let owned: Vec<Vec<u8>> = (0..1000)
        .map(|i| format!("acme_live_sharedprefix_{i:08}").into_bytes())
        .collect();
    let patterns: Vec<&[u8]> = owned.iter().map(Vec::as_slice).collect();
    let s = searcher(&patterns);
    assert!(s.grams.len() < 1000 * 3, "{} entries", s.grams.len());
    let near_misses = b"acme_live_sharedprefix_00000zz ".repeat(40);
    assert_eq!(found(&s, &near_misses), vec![]);
    let planted = [near_misses.as_slice(), &owned[777], b" ", &owned[3]].concat();
    let n = near_misses.len();
    let end = n + owned[777].len();
    assert_eq!(
        found(&s, &planted),
        vec![(n, end, 777), (end + 1, end + 1 + owned[3].len(), 3)]
    );
}

#[test]
fn a_run_of_repeated_bytes_matches_back_to_back() {
    let patterns: [&[u8]; 2] = [b"aaaaaaaaaa", b"aaaaaaaaaaaaaaaaaaa"];
    let s = searcher(&patterns);
    let haystack = vec![b'a'; 1000];
    assert_eq!(found(&s, &haystack), naive(&patterns, &haystack));
}

#[test]
fn debug_output_never_shows_patterns() {
    let s = searcher(&[b"hunter2-hunter2"]);
    let shown = format!("{s:?}");
    assert!(!shown.contains("hunter"), "{shown}");
}

fn pattern() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 8..40),
        prop::collection::vec(prop::sample::select(b"ab".to_vec()), 8..20),
        prop::collection::vec(prop::sample::select(b"abc-".to_vec()), 8..30),
    ]
}

/// Sets whose shortest pattern picks each gram width and stride: 15 bytes and more (8, 8),
/// 11 to 14 (8, 4), 8 to 10 (5 to 7, 4), and shorter than any form (1, its length).
fn pattern_set() -> impl Strategy<Value = Vec<Vec<u8>>> {
    let long = prop_oneof![
        prop::collection::vec(any::<u8>(), 15..48),
        prop::collection::vec(prop::sample::select(b"abc-".to_vec()), 15..40),
    ];
    let short = prop_oneof![
        prop::collection::vec(any::<u8>(), 1..8),
        prop::collection::vec(prop::sample::select(b"ab".to_vec()), 1..8),
    ];
    prop_oneof![
        prop::collection::vec(pattern(), 1..12),
        prop::collection::vec(long, 1..12),
        (prop::collection::vec(pattern(), 0..6), short).prop_map(|(mut set, short)| {
            set.push(short);
            set
        }),
    ]
}

fn filler() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..30),
        prop::collection::vec(prop::sample::select(b"ab".to_vec()), 0..30),
        prop::collection::vec(prop::sample::select(b"abc-".to_vec()), 0..30),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// Patterns planted at random offsets in random filler are found exactly as a naive search
    /// and a leftmost-longest Aho-Corasick automaton find them.
    #[test]
    fn matches_equal_the_naive_search_and_aho_corasick(
        owned in pattern_set(),
        parts in prop::collection::vec((filler(), any::<prop::sample::Index>()), 0..10),
        tail in filler(),
    ) {
        let mut unique = owned.clone();
        unique.sort();
        unique.dedup();
        let patterns: Vec<&[u8]> = unique.iter().map(Vec::as_slice).collect();
        let mut haystack = Vec::new();
        for (fill, which) in &parts {
            haystack.extend_from_slice(fill);
            haystack.extend_from_slice(which.get::<Vec<u8>>(&unique));
        }
        haystack.extend_from_slice(&tail);
        let s = searcher(&patterns);
        let got = found(&s, &haystack);
        prop_assert_eq!(&got, &naive(&patterns, &haystack));
        prop_assert_eq!(&got, &aho_corasick(&patterns, &haystack));
    }

    /// Every suffix of a haystack (the streaming callers search from an offset) agrees too.
    #[test]
    fn every_suffix_agrees_with_the_naive_search(
        owned in pattern_set(),
        parts in prop::collection::vec((filler(), any::<prop::sample::Index>()), 1..6),
    ) {
        let mut unique = owned.clone();
        unique.sort();
        unique.dedup();
        let patterns: Vec<&[u8]> = unique.iter().map(Vec::as_slice).collect();
        let mut haystack = Vec::new();
        for (fill, which) in &parts {
            haystack.extend_from_slice(fill);
            haystack.extend_from_slice(which.get::<Vec<u8>>(&unique));
        }
        let s = searcher(&patterns);
        for from in 0..haystack.len() {
            let rest = &haystack[from..];
            prop_assert_eq!(found(&s, rest), naive(&patterns, rest), "from {}", from);
        }
    }
}
