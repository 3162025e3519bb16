//! Keys given concatenated in one buffer, with their lengths in order: the layout the C ABI's
//! batch calls take, and the one a hand-over of reads keeps.

/// The sum of `lens`, or `None` when it overflows.
pub(crate) fn total_len(lens: &[usize]) -> Option<usize> {
    lens.iter()
        .try_fold(0usize, |sum, &len| sum.checked_add(len))
}

/// Checks that `lens` add up to `keys.len()`.
///
/// # Panics
/// When they do not (or their sum overflows).
pub(crate) fn assert_lengths_match(keys: &[u8], lens: &[usize]) {
    assert_eq!(
        total_len(lens),
        Some(keys.len()),
        "key lengths do not match the keys"
    );
}

/// The keys of `keys` cut by `lens`, in order.
///
/// # Panics
/// When the lengths add up to more than `keys.len()` (once the iterator reaches that key).
pub(crate) fn split<'a>(keys: &'a [u8], lens: &'a [usize]) -> impl Iterator<Item = &'a [u8]> + 'a {
    let mut rest = keys;
    lens.iter().map(move |&len| {
        let (key, tail) = rest.split_at(len);
        rest = tail;
        key
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_cuts_the_buffer_by_the_lengths_in_order() {
        let keys: Vec<&[u8]> = split(b"abcdef", &[1, 0, 3, 2]).collect();
        assert_eq!(keys, [&b"a"[..], b"", b"bcd", b"ef"]);
        assert_eq!(total_len(&[1, 0, 3, 2]), Some(6));
        assert_eq!(total_len(&[usize::MAX, 1]), None);
    }
}
