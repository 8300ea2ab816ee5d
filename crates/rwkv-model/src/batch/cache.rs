//! The prefix-state cache: states saved after prompts (and after finished sequences), keyed by
//! the tokens they consumed, found by longest prefix, bounded in bytes with least-recently-used
//! eviction.

/// What the cache did since the batch was created.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Sequences whose prompt started with a cached prefix.
    pub hits: u64,
    /// Sequences whose prompt started with no cached prefix (with the cache on).
    pub misses: u64,
    /// Entries held now.
    pub entries: usize,
    /// Bytes they hold now.
    pub bytes: u64,
    /// Prompt tokens not prefilled thanks to hits.
    pub tokens_reused: u64,
    /// Entries dropped to make room.
    pub evictions: u64,
}

struct Entry<V> {
    key: Vec<u32>,
    value: V,
    bytes: u64,
    last_used: u64,
}

/// Values of `bytes` each under token-sequence keys, at most `budget` bytes in all.
pub(crate) struct PrefixCache<V> {
    budget: u64,
    entries: Vec<Entry<V>>,
    clock: u64,
    stats: CacheStats,
}

impl<V> PrefixCache<V> {
    pub(crate) fn new(budget: u64) -> Self {
        PrefixCache { budget, entries: Vec::new(), clock: 0, stats: CacheStats::default() }
    }

    pub(crate) fn enabled(&self) -> bool {
        self.budget > 0
    }

    pub(crate) fn stats(&self) -> CacheStats {
        CacheStats { entries: self.entries.len(), bytes: self.entries.iter().map(|e| e.bytes).sum(), ..self.stats }
    }

    /// The entry with the longest key that is a prefix of `tokens` and at most `max_len` long
    /// (and not empty), marked as just used; counts a hit or a miss.
    pub(crate) fn lookup(&mut self, tokens: &[u32], max_len: usize) -> Option<(&V, usize)> {
        if !self.enabled() {
            return None;
        }
        self.clock += 1;
        let best = self
            .entries
            .iter()
            .enumerate()
            .filter(|(_, e)| !e.key.is_empty() && e.key.len() <= max_len && tokens.starts_with(&e.key))
            .max_by_key(|(_, e)| e.key.len())
            .map(|(i, _)| i);
        match best {
            Some(i) => {
                let e = &mut self.entries[i];
                e.last_used = self.clock;
                self.stats.hits += 1;
                self.stats.tokens_reused += e.key.len() as u64;
                Some((&e.value, e.key.len()))
            }
            None => {
                self.stats.misses += 1;
                None
            }
        }
    }

    /// Whether `key` is held.
    pub(crate) fn contains(&self, key: &[u32]) -> bool {
        self.entries.iter().any(|e| e.key == key)
    }

    /// Stores `value` under `key` (replacing an entry with the same key), evicting the least
    /// recently used entries until it fits. Returns what left the cache (to be dropped), or the
    /// value itself if it can never fit.
    pub(crate) fn insert(&mut self, key: Vec<u32>, value: V, bytes: u64) -> Vec<V> {
        if !self.enabled() || bytes > self.budget || key.is_empty() {
            return vec![value];
        }
        self.clock += 1;
        let mut out = Vec::new();
        if let Some(i) = self.entries.iter().position(|e| e.key == key) {
            out.push(self.entries.swap_remove(i).value);
        }
        while self.entries.iter().map(|e| e.bytes).sum::<u64>() + bytes > self.budget {
            let oldest = self.entries.iter().enumerate().min_by_key(|(_, e)| e.last_used).map(|(i, _)| i);
            let Some(i) = oldest else { break };
            out.push(self.entries.swap_remove(i).value);
            self.stats.evictions += 1;
        }
        self.entries.push(Entry { key, value, bytes, last_used: self.clock });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_prefix_wins_and_respects_the_limit() {
        let mut c = PrefixCache::new(100);
        assert!(c.insert(vec![1, 2], "a", 10).is_empty());
        assert!(c.insert(vec![1, 2, 3, 4], "b", 10).is_empty());
        assert!(c.insert(vec![9], "c", 10).is_empty());
        assert_eq!(c.lookup(&[1, 2, 3, 4, 5], 5), Some((&"b", 4)));
        // At most 3 tokens may come from the cache: the shorter entry.
        assert_eq!(c.lookup(&[1, 2, 3, 4, 5], 3), Some((&"a", 2)));
        assert_eq!(c.lookup(&[1, 3], 2), None);
        let s = c.stats();
        assert_eq!((s.hits, s.misses, s.tokens_reused, s.entries, s.bytes), (2, 1, 6, 3, 30));
    }

    #[test]
    fn least_recently_used_is_evicted_first() {
        let mut c = PrefixCache::new(30);
        c.insert(vec![1], 1, 10);
        c.insert(vec![2], 2, 10);
        c.insert(vec![3], 3, 10);
        // Touch 1: 2 is now the oldest.
        assert!(c.lookup(&[1, 7], 2).is_some());
        assert_eq!(c.insert(vec![4], 4, 10), vec![2]);
        assert!(c.contains(&[1]) && !c.contains(&[2]) && c.contains(&[4]));
        // Twenty bytes at once: the two least recent go (3, then 1).
        let out = c.insert(vec![5], 5, 20);
        assert_eq!(out, vec![3, 1]);
        assert_eq!(c.stats().evictions, 3);
        assert_eq!(c.stats().bytes, 30);
    }

    #[test]
    fn what_cannot_fit_is_handed_back_and_same_key_replaces() {
        let mut c = PrefixCache::new(10);
        assert_eq!(c.insert(vec![1], 1, 11), vec![1]);
        assert_eq!(c.insert(vec![], 2, 1), vec![2]);
        assert!(c.insert(vec![1], 3, 5).is_empty());
        assert_eq!(c.insert(vec![1], 4, 5), vec![3]);
        assert_eq!(c.stats().entries, 1);
        let mut off = PrefixCache::new(0);
        assert_eq!(off.insert(vec![1], 1, 0), vec![1]);
        assert_eq!(off.lookup(&[1, 2], 2), None);
        assert_eq!(off.stats().misses, 0);
    }
}
