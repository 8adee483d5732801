//! The instance in context: the campaign's figures set against the
//! instance's active users. Integer arithmetic only.

/// `part` as a share of `whole`, in hundredths of a percent, rounded down;
/// `None` when `whole` is not positive.
pub fn share_basis_points(part: i64, whole: i64) -> Option<i64> {
    (whole > 0).then(|| {
        (i128::from(part.max(0)) * 10_000 / i128::from(whole)).min(i128::from(i64::MAX)) as i64
    })
}

/// `total_minor` shared among `heads`, rounded up to the next minor unit
/// (what each must give so that together they cover it); `None` without
/// heads.
pub fn per_head_rounded_up(total_minor: i64, heads: i64) -> Option<i64> {
    if heads <= 0 {
        return None;
    }
    let total = total_minor.max(0);
    Some(total / heads + i64::from(total % heads != 0))
}

/// Basis points as people read them: "12.34%".
pub fn percent_text(basis_points: i64) -> String {
    format!("{}.{:02}%", basis_points / 100, basis_points % 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_round_down_and_need_a_whole() {
        assert_eq!(share_basis_points(3, 1234), Some(24));
        assert_eq!(share_basis_points(1234, 1234), Some(10_000));
        assert_eq!(share_basis_points(1, 3), Some(3_333));
        assert_eq!(share_basis_points(5, 0), None);
    }

    #[test]
    fn amounts_per_head_round_up() {
        assert_eq!(per_head_rounded_up(30_000, 1234), Some(25));
        assert_eq!(per_head_rounded_up(30_000, 3), Some(10_000));
        assert_eq!(per_head_rounded_up(30_001, 3), Some(10_001));
        assert_eq!(per_head_rounded_up(0, 3), Some(0));
        assert_eq!(per_head_rounded_up(100, 0), None);
        assert_eq!(percent_text(24), "0.24%");
        assert_eq!(percent_text(12_345), "123.45%");
    }
}
