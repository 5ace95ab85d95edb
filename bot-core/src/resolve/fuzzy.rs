//! Fuzzy lookup by symmetric deletion: near matches found without scanning every key.
//!
//! Every key is indexed under the hashes of all strings obtained by deleting up to two
//! of its characters; a typed string looks up the hashes of its own deletions, and each
//! key found is verified by an optimal-string-alignment distance bounded by k (equal to
//! [`strsim::osa_distance`] within the bound, without its allocations). A transposition (`stauts`) is one
//! deletion on each side, so optimal-string-alignment distance ≤ k is always found with
//! k deletions per side. Hash collisions only add candidates that verification rejects.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Longest key or typed string (in characters) the fuzzy index considers.
pub(crate) const MAX_CHARS: usize = 64;

/// Maximum edit distance for a typed string of `chars` characters: 4+ → 1, 8+ → 2.
pub(crate) fn allowed_distance(chars: usize) -> usize {
    match chars {
        0..=3 => 0,
        4..=7 => 1,
        _ => 2,
    }
}

/// Deletion-neighbourhood index over keys identified by `u32` ids.
#[derive(Debug, Clone, Default)]
pub(crate) struct Fuzzy {
    /// Deletion hash → range in `ids`.
    postings: HashMap<u64, (u32, u32), BuildHasherDefault<IdHasher>>,
    ids: Vec<u32>,
    /// Characters per key id, to skip verification when lengths differ too much.
    lens: Vec<u8>,
}

impl Fuzzy {
    /// Indexes `keys` (id = position). Keys shorter than 3 characters can never be
    /// within reach of a 4+ character typo, and keys longer than [`MAX_CHARS`] are
    /// never typed; both are left out.
    pub(crate) fn build<'a>(keys: impl IntoIterator<Item = &'a str>) -> Self {
        let mut pairs: Vec<(u64, u32)> = Vec::new();
        let mut lens = Vec::new();
        let mut chars = Vec::with_capacity(MAX_CHARS);
        for (id, key) in keys.into_iter().enumerate() {
            let id = u32::try_from(id).unwrap_or(u32::MAX);
            chars.clear();
            chars.extend(key.chars().map(u32::from));
            lens.push(u8::try_from(chars.len()).unwrap_or(u8::MAX));
            if chars.len() < 3 || chars.len() > MAX_CHARS {
                continue;
            }
            // A key of 3–5 characters only meets typed strings of 4–7 (distance 1).
            let depth = if chars.len() >= 6 { 2 } else { 1 };
            deletion_hashes(&chars, depth, |h| pairs.push((h, id)));
        }
        pairs.sort_unstable();
        pairs.dedup();
        let mut postings = HashMap::with_capacity_and_hasher(pairs.len(), Default::default());
        let mut ids = Vec::with_capacity(pairs.len());
        let mut start = 0;
        while start < pairs.len() {
            let hash = pairs[start].0;
            let mut end = start;
            while end < pairs.len() && pairs[end].0 == hash {
                ids.push(pairs[end].1);
                end += 1;
            }
            let from = u32::try_from(start).unwrap_or(u32::MAX);
            let to = u32::try_from(end).unwrap_or(u32::MAX);
            postings.insert(hash, (from, to));
            start = end;
        }
        Self {
            postings,
            ids,
            lens,
        }
    }

    /// Keys within the allowed distance of `typed`, as `(id, distance)`, each once.
    /// `key` gives the text of a key id (the index does not keep the keys).
    pub(crate) fn near<'k>(
        &self,
        typed: &str,
        key: impl Fn(u32) -> Option<&'k str>,
    ) -> Vec<(u32, usize)> {
        let mut chars = [0u32; MAX_CHARS];
        let mut n = 0;
        for c in typed.chars() {
            if n == MAX_CHARS {
                return Vec::new();
            }
            chars[n] = u32::from(c);
            n += 1;
        }
        let k = allowed_distance(n);
        if k == 0 {
            return Vec::new();
        }
        let mut ids: Vec<u32> = Vec::new();
        deletion_hashes(&chars[..n], k, |h| {
            if let Some(&(from, to)) = self.postings.get(&h) {
                let posted = self.ids.get(from as usize..to as usize).unwrap_or(&[]);
                ids.extend(posted.iter().copied().filter(|&id| {
                    let len = self.lens.get(id as usize).copied().unwrap_or(u8::MAX);
                    usize::from(len).abs_diff(n) <= k
                }));
            }
        });
        ids.sort_unstable();
        ids.dedup();
        let mut found = Vec::new();
        for id in ids {
            if let Some(distance) = key(id).and_then(|key| bounded_osa(&chars[..n], key, k)) {
                found.push((id, distance));
            }
        }
        found
    }
}

/// Optimal-string-alignment distance between `a` and `b` when it is at most `k`
/// (same result as [`strsim::osa_distance`], which the tests hold it to), computed
/// on the stack and abandoned as soon as every alignment costs more than `k`.
fn bounded_osa(a: &[u32], b: &str, k: usize) -> Option<usize> {
    let mut bc = [0u32; MAX_CHARS];
    let mut m = 0;
    for c in b.chars() {
        if m == MAX_CHARS {
            return None;
        }
        bc[m] = u32::from(c);
        m += 1;
    }
    let b = &bc[..m];
    let n = a.len();
    if n.abs_diff(m) > k || n > MAX_CHARS {
        return None;
    }
    // Rows i-2, i-1 and i of the table, rotating. Only the band |i - j| ≤ k can hold
    // a distance ≤ k; the cells just outside it are kept at `far` so that reads from
    // the neighbouring rows see "too far" rather than a stale value.
    // Distances above k are all "too far": cells fit in a byte.
    let k8 = u8::try_from(k).unwrap_or(u8::MAX - 1);
    let far = k8 + 1;
    let mut rows = [[far; MAX_CHARS + 2]; 3];
    for (j, cell) in rows[0].iter_mut().enumerate().take(m.min(k) + 1) {
        *cell = u8::try_from(j).unwrap_or(far);
    }
    for i in 1..=n {
        let [r0, r1, r2] = &mut rows;
        let (two_back, prev, curr) = match i % 3 {
            1 => (&*r2, &*r0, r1),
            2 => (&*r0, &*r1, r2),
            _ => (&*r1, &*r2, r0),
        };
        let lo = i.saturating_sub(k).max(1);
        let hi = (i + k).min(m);
        curr[lo - 1] = if lo == 1 {
            u8::try_from(i).unwrap_or(far).min(far)
        } else {
            far
        };
        let mut row_min = curr[lo - 1];
        for j in lo..=hi {
            let cost = u8::from(a[i - 1] != b[j - 1]);
            let mut best = (prev[j] + 1).min(curr[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && cost == 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(two_back[j - 2] + 1);
            }
            let best = best.min(far);
            curr[j] = best;
            row_min = row_min.min(best);
        }
        curr[hi + 1] = far;
        if row_min > k8 {
            return None;
        }
    }
    let distance = usize::from(rows[n % 3][m]);
    (distance <= k).then_some(distance)
}

const BASE: u64 = 0x9e37_79b9_7f4a_7c15 | 1;

/// Calls `emit` with the hash of `chars` and of every string obtained by deleting up
/// to `depth` (≤ 2) characters. Uses polynomial prefix hashes: O(1) per variant.
fn deletion_hashes(chars: &[u32], depth: usize, mut emit: impl FnMut(u64)) {
    let n = chars.len();
    if n > MAX_CHARS {
        return;
    }
    let mut prefix = [0u64; MAX_CHARS + 1];
    let mut pow = [1u64; MAX_CHARS + 1];
    for (i, &c) in chars.iter().enumerate() {
        prefix[i + 1] = prefix[i].wrapping_mul(BASE).wrapping_add(u64::from(c) + 1);
        pow[i + 1] = pow[i].wrapping_mul(BASE);
    }
    // Hash of chars[a..b].
    let sub = |a: usize, b: usize| prefix[b].wrapping_sub(prefix[a].wrapping_mul(pow[b - a]));
    let cat = |h1: u64, h2: u64, len2: usize| h1.wrapping_mul(pow[len2]).wrapping_add(h2);
    emit(finish(prefix[n], n));
    if depth == 0 || n == 0 {
        return;
    }
    for i in 0..n {
        emit(finish(cat(sub(0, i), sub(i + 1, n), n - i - 1), n - 1));
    }
    if depth < 2 || n < 2 {
        return;
    }
    for i in 0..n {
        for j in i + 1..n {
            let left = cat(sub(0, i), sub(i + 1, j), j - i - 1);
            emit(finish(cat(left, sub(j + 1, n), n - j - 1), n - 2));
        }
    }
}

/// Mixes the length in and spreads the bits (splitmix64 finaliser).
fn finish(hash: u64, len: usize) -> u64 {
    let mut z = hash ^ (len as u64).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Hasher for keys that are already well-mixed `u64` hashes.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(BASE);
        }
    }
    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// A fast non-cryptographic hasher for short strings (the FxHash mixing step); the
/// alias tables are built from our own config, so hash flooding is not a concern.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct FxHasher(u64);

const FX_SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(FX_SEED);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let tail = chunks.remainder();
        if !tail.is_empty() {
            let mut word = [0u8; 8];
            word[..tail.len()].copy_from_slice(tail);
            self.add(u64::from_le_bytes(word));
        }
    }
    fn write_u8(&mut self, value: u8) {
        self.add(u64::from(value));
    }
    fn write_usize(&mut self, value: usize) {
        self.add(value as u64);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// `HashMap` with [`FxHasher`].
pub(crate) type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

#[cfg(test)]
mod tests {
    use super::*;

    fn near(keys: &[&str], typed: &str) -> Vec<(String, usize)> {
        let index = Fuzzy::build(keys.iter().copied());
        let mut found: Vec<(String, usize)> = index
            .near(typed, |id| keys.get(id as usize).copied())
            .into_iter()
            .map(|(id, d)| (keys[id as usize].to_string(), d))
            .collect();
        found.sort();
        found
    }

    #[test]
    fn finds_what_a_scan_would_find() {
        let keys = [
            "status",
            "restart",
            "deploy",
            "health",
            "roi hunter",
            "master",
            "master blue",
            "stage blue",
            "staging",
            "rh",
            "web",
            "app",
        ];
        for typed in [
            "stauts",
            "restrat",
            "deplyo",
            "helth",
            "roih hunter",
            "mastr",
            "mastr blue",
            "stg blue",
            "stagign",
            "rhh",
            "webb",
            "aap",
            "masterblue",
            "roihunter",
            "xyzzy",
            "health",
            "",
        ] {
            let chars = typed.chars().count();
            let k = allowed_distance(chars);
            let mut expected: Vec<(String, usize)> = keys
                .iter()
                .map(|key| (key.to_string(), strsim::osa_distance(typed, key)))
                .filter(|(_, d)| k > 0 && *d <= k)
                .collect();
            expected.sort();
            assert_eq!(near(&keys, typed), expected, "typed {typed:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn bounded_osa_is_strsim_within_the_bound(
            a in "[abc ]{0,12}|\\PC{0,10}",
            b in "[abc ]{0,12}|\\PC{0,10}",
            k in 0usize..3,
        ) {
            let chars: Vec<u32> = a.chars().map(u32::from).collect();
            let exact = strsim::osa_distance(&a, &b);
            proptest::prop_assert_eq!(bounded_osa(&chars, &b, k), (exact <= k).then_some(exact));
        }
    }

    #[test]
    fn short_typos_are_not_guessed() {
        assert_eq!(near(&["rh", "web"], "wb"), vec![]);
        assert_eq!(near(&["rh", "web"], "rhh"), vec![]);
    }

    #[test]
    fn distance_follows_length() {
        assert_eq!(allowed_distance(3), 0);
        assert_eq!(allowed_distance(4), 1);
        assert_eq!(allowed_distance(7), 1);
        assert_eq!(allowed_distance(8), 2);
    }
}
