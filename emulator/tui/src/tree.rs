//! Tree glyphs (`├ `, `└ `, `│ `) for lists drawn as trees: the instance list (sub-orchestrations
//! under their parents), the errors view. Pure: a list of depths in, one prefix per row out.
//!
//! Knows only depths in list order (a row's children follow it, one deeper); not what the rows
//! are nor how they are styled.

/// The prefix of every row of a tree given as the depth of each row, in order: nothing at depth
/// 0; at depth `d`, `│ ` or two spaces for each ancestor level 1..d (whether that ancestor has a
/// later sibling), then `├ ` if the row has a later sibling, `└ ` if it is the last one.
///
/// One backward pass, O(rows × depth): `open[k]` says whether a row at depth `k` follows (before
/// any shallower row ends that level), which is exactly "has a later sibling" at level `k`.
pub fn prefixes(depths: &[u8]) -> Vec<String> {
    let deepest = depths.iter().copied().max().map_or(0, usize::from);
    let mut open = vec![false; deepest + 1];
    let mut out = vec![String::new(); depths.len()];
    for (index, depth) in depths.iter().enumerate().rev() {
        let depth = usize::from(*depth);
        if depth > 0 {
            let mut prefix = String::with_capacity(depth * 4);
            for ancestor_continues in &open[1..depth] {
                prefix.push_str(if *ancestor_continues { "│ " } else { "  " });
            }
            prefix.push_str(if open[depth] { "├ " } else { "└ " });
            out[index] = prefix;
        }
        open[depth] = true;
        for deeper in open.iter_mut().skip(depth + 1) {
            *deeper = false;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::prefixes;

    #[test]
    fn siblings_get_a_tee_the_last_a_corner_and_open_ancestors_a_bar() {
        // root
        // ├ a
        // │ └ a1
        // └ b
        //   ├ b1
        //   └ b2
        // root2
        let depths = [0, 1, 2, 1, 2, 2, 0];
        assert_eq!(
            prefixes(&depths),
            ["", "├ ", "│ └ ", "└ ", "  ├ ", "  └ ", ""]
        );
    }

    #[test]
    fn a_shallower_row_closes_deeper_levels() {
        // A note back at depth 0 ends the tree above it: the last child is a corner.
        assert_eq!(prefixes(&[0, 1, 1, 0, 1]), ["", "├ ", "└ ", "", "└ "]);
        assert!(prefixes(&[]).is_empty());
    }
}
