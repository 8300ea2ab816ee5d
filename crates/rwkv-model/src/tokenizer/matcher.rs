//! Greedy longest-prefix matching over a byte trie, flattened for speed: the root's children are a 256-entry
//! table, every other node's children are a sorted run of (byte, child) edges found by binary search.

const NONE: u32 = u32::MAX;

#[derive(Clone, Copy)]
struct Node {
    /// Token id ending at this node, or `NONE`.
    token: u32,
    first_edge: u32,
    edge_count: u32,
}

/// Finds, at a position of a byte string, the longest inserted byte string that is a prefix of the rest.
#[derive(Clone)]
pub(super) struct Matcher {
    root: [u32; 256],
    nodes: Vec<Node>,
    edge_bytes: Vec<u8>,
    edge_children: Vec<u32>,
}

impl Matcher {
    /// Builds the trie of `(token id, bytes)` pairs. For byte strings given twice the first id wins.
    /// Empty byte strings are ignored (they can never be matched).
    pub(super) fn new<'a>(entries: impl Iterator<Item = (u32, &'a [u8])>) -> Self {
        // Build with per-node child lists, then flatten; node indices are kept (node 0 is the root).
        let mut tokens: Vec<u32> = vec![NONE];
        let mut children: Vec<Vec<(u8, u32)>> = vec![Vec::new()];
        for (id, bytes) in entries {
            if bytes.is_empty() {
                continue;
            }
            let mut node = 0usize;
            for &b in bytes {
                node = match children[node].iter().find(|(e, _)| *e == b) {
                    Some(&(_, child)) => child as usize,
                    None => {
                        let child = tokens.len();
                        tokens.push(NONE);
                        children.push(Vec::new());
                        children[node].push((b, child as u32));
                        child
                    }
                };
            }
            if tokens[node] == NONE {
                tokens[node] = id;
            }
        }
        let mut root = [NONE; 256];
        for &(b, child) in &children[0] {
            root[b as usize] = child;
        }
        let mut nodes = Vec::with_capacity(tokens.len());
        let mut edge_bytes = Vec::with_capacity(tokens.len());
        let mut edge_children = Vec::with_capacity(tokens.len());
        for (token, mut edges) in tokens.into_iter().zip(children) {
            edges.sort_unstable_by_key(|&(b, _)| b);
            nodes.push(Node { token, first_edge: edge_bytes.len() as u32, edge_count: edges.len() as u32 });
            for (b, child) in edges {
                edge_bytes.push(b);
                edge_children.push(child);
            }
        }
        Matcher { root, nodes, edge_bytes, edge_children }
    }

    /// The token id and length of the longest entry that is a prefix of `input`, if any.
    #[inline]
    pub(super) fn longest_prefix(&self, input: &[u8]) -> Option<(u32, usize)> {
        let first = *input.first()?;
        let mut node = self.root[first as usize];
        let mut best = None;
        let mut len = 1;
        while node != NONE {
            let n = self.nodes[node as usize];
            if n.token != NONE {
                best = Some((n.token, len));
            }
            let Some(&next) = input.get(len) else { break };
            let start = n.first_edge as usize;
            let edges = &self.edge_bytes[start..start + n.edge_count as usize];
            node = match edges.binary_search(&next) {
                Ok(i) => self.edge_children[start + i],
                Err(_) => NONE,
            };
            len += 1;
        }
        best
    }

    /// Whether some entry is exactly the single byte `b`.
    pub(super) fn has_single_byte(&self, b: u8) -> bool {
        let node = self.root[b as usize];
        node != NONE && self.nodes[node as usize].token != NONE
    }
}
