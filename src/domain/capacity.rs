//! The capacity rules of an inventory, shared by claims, provider filters
//! and allocation candidates: capacity is `(total - reserved) *
//! allocation_ratio`, and each requested amount must respect `min_unit`,
//! `max_unit` and `step_size`. Answers to upstream's
//! `_check_capacity_exceeded` in `objects/allocation.py`.

/// The limits of one inventory record.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limits {
    pub total: i64,
    pub reserved: i64,
    pub min_unit: i64,
    pub max_unit: i64,
    pub step_size: i64,
    pub allocation_ratio: f64,
}

impl Limits {
    /// How much may be allocated in all.
    pub fn capacity(&self) -> f64 {
        (self.total - self.reserved) as f64 * self.allocation_ratio
    }

    /// True when one allocation of `amount` respects min, max and step.
    pub fn accepts_amount(&self, amount: i64) -> bool {
        amount >= self.min_unit
            && amount <= self.max_unit
            && self.step_size > 0
            && amount % self.step_size == 0
    }

    /// True when `used` plus `amount` stays within capacity.
    pub fn has_room(&self, used: i64, amount: i64) -> bool {
        (used as f64) + (amount as f64) <= self.capacity()
    }

    /// True when an amount can be taken now: constraints and capacity.
    pub fn can_allocate(&self, used: i64, amount: i64) -> bool {
        self.accepts_amount(amount) && self.has_room(used, amount)
    }
}

/// Why a write of allocations against one inventory is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// An amount breaks min_unit, max_unit or step_size.
    ConstraintsViolated,
    /// The total would exceed capacity and make an overage worse.
    CapacityExceeded,
}

/// Checks a write against one inventory.
///
/// * `amounts`: each amount the write allocates from this inventory.
/// * `used_by_others`: usage of everyone else (the consumers being
///   rewritten already removed).
/// * `previous_usage`: total usage before the write, including what the
///   rewritten consumers held. A provider already over capacity (after its
///   reserved or ratio changed) still accepts a write that leaves usage no
///   higher than this, so operators can shrink allocations.
pub fn check_write(
    limits: &Limits,
    amounts: &[i64],
    used_by_others: i64,
    previous_usage: i64,
) -> Result<(), Refusal> {
    if amounts.iter().any(|amount| !limits.accepts_amount(*amount)) {
        return Err(Refusal::ConstraintsViolated);
    }
    let requested: i64 = amounts.iter().sum();
    let after = used_by_others.saturating_add(requested);
    if limits.has_room(used_by_others, requested) || after <= previous_usage {
        Ok(())
    } else {
        Err(Refusal::CapacityExceeded)
    }
}

/// The most usage (everyone's) at which `check_write` still accepts
/// `amounts` from a consumer that holds nothing here yet; `None` when it
/// accepts them at no usage. A claim checked against a possibly older
/// reading of the usage stays right as long as the usage is at most this
/// and the limits are the same.
pub fn most_usage_admitting(limits: &Limits, amounts: &[i64]) -> Option<i64> {
    let admits = |used: i64| check_write(limits, amounts, used, used).is_ok();
    if !admits(0) {
        return None;
    }
    // Less usage never turns a yes into a no: search for the last yes.
    let (mut yes, mut above) = (0i64, i64::MAX);
    while above - yes > 1 {
        let middle = yes + (above - yes) / 2;
        if admits(middle) {
            yes = middle;
        } else {
            above = middle;
        }
    }
    Some(yes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn limits(total: i64, reserved: i64, ratio: f64) -> Limits {
        Limits {
            total,
            reserved,
            min_unit: 1,
            max_unit: total,
            step_size: 1,
            allocation_ratio: ratio,
        }
    }

    #[test]
    fn capacity_applies_reserved_and_ratio() {
        assert_eq!(limits(16, 2, 4.0).capacity(), 56.0);
        assert!(limits(16, 2, 4.0).has_room(50, 6));
        assert!(!limits(16, 2, 4.0).has_room(50, 7));
    }

    #[test]
    fn constraints() {
        let limits = Limits {
            total: 100,
            reserved: 0,
            min_unit: 2,
            max_unit: 10,
            step_size: 2,
            allocation_ratio: 1.0,
        };
        assert!(limits.accepts_amount(2));
        assert!(limits.accepts_amount(10));
        assert!(!limits.accepts_amount(1));
        assert!(!limits.accepts_amount(3));
        assert!(!limits.accepts_amount(12));
        assert_eq!(
            check_write(&limits, &[3], 0, 0),
            Err(Refusal::ConstraintsViolated)
        );
    }

    #[test]
    fn over_capacity_provider_accepts_writes_that_do_not_worsen() {
        // Capacity 10 after reserved went up; 14 already used by one consumer.
        let limits = limits(20, 10, 1.0);
        assert_eq!(check_write(&limits, &[12], 0, 14), Ok(()));
        assert_eq!(check_write(&limits, &[14], 0, 14), Ok(()));
        assert_eq!(
            check_write(&limits, &[15], 0, 14),
            Err(Refusal::CapacityExceeded)
        );
    }

    proptest! {
        #[test]
        fn accepted_writes_never_exceed_capacity_unless_no_worse(
            total in 1i64..1000,
            reserved in 0i64..1000,
            ratio in prop::sample::select(vec![0.5, 1.0, 1.5, 4.0, 16.0]),
            used in 0i64..5000,
            previous_extra in 0i64..100,
            amounts in prop::collection::vec(1i64..200, 1..4),
        ) {
            let limits = limits(total, reserved.min(total), ratio);
            let previous = used + previous_extra;
            if check_write(&limits, &amounts, used, previous).is_ok() {
                let after = used + amounts.iter().sum::<i64>();
                prop_assert!(after as f64 <= limits.capacity() || after <= previous);
            }
        }

        #[test]
        fn most_usage_admitting_is_where_check_write_turns(
            total in 1i64..1000,
            reserved in 0i64..1000,
            ratio in prop::sample::select(vec![0.1, 0.5, 1.0, 1.5, 4.0, 16.0]),
            step_size in 1i64..4,
            used in 0i64..20_000,
            amounts in prop::collection::vec(1i64..200, 1..4),
        ) {
            let limits = Limits { step_size, ..limits(total, reserved.min(total), ratio) };
            let accepted = check_write(&limits, &amounts, used, used).is_ok();
            match most_usage_admitting(&limits, &amounts) {
                Some(most) => prop_assert_eq!(accepted, used <= most),
                None => prop_assert!(!accepted),
            }
        }
    }
}
