//! Properties over random valid grids (L, M, T): bijection, round trip, schedule coverage,
//! no attention to later steps, no target leak.

use par_order::{ParSchedule, RegionGrid, Slot, TokenOrder};
use proptest::prelude::*;

/// A random valid grid: M in 1..=5, region side b in 1..=6, T in 1..=3 (L = M·b ≤ 30).
fn grids() -> impl Strategy<Value = RegionGrid> {
    (1usize..=5, 1usize..=6, 1usize..=3)
        .prop_map(|(m, b, t)| RegionGrid::video(t, m * b, m * m).expect("valid by construction"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn permutation_is_a_bijection_and_round_trips(grid in grids()) {
        let order = TokenOrder::new(grid);
        let n_tokens = grid.num_image_tokens();
        let mut seen = vec![false; n_tokens];
        for &r in order.par_to_raster() {
            prop_assert!(r < n_tokens);
            prop_assert!(!seen[r], "raster {} appears twice", r);
            seen[r] = true;
        }
        for (p, &r) in order.par_to_raster().iter().enumerate() {
            prop_assert_eq!(order.raster_to_par()[r], p);
        }
        let raster: Vec<usize> = (0..n_tokens).map(|i| i * 7 + 3).collect();
        let par = order.permute(&raster).unwrap();
        prop_assert_eq!(order.unpermute(&par).unwrap(), raster);
    }

    #[test]
    fn first_tokens_are_region_corners_and_groups_share_in_region_offset(grid in grids()) {
        let order = TokenOrder::new(grid);
        let (n, b) = (grid.parallel(), grid.region_size());
        for (p, &r) in order.par_to_raster().iter().enumerate() {
            let cell = grid.cell(r);
            let group_leader = grid.cell(order.par_to_raster()[p - p % n]);
            // Same frame and in-region offset as the group's first member; regions in raster order.
            prop_assert_eq!((cell.frame, cell.row % b, cell.col % b),
                            (group_leader.frame, group_leader.row % b, group_leader.col % b));
            let m = grid.regions_per_side();
            prop_assert_eq!((cell.row / b) * m + cell.col / b, p % n);
            if p < n {
                prop_assert_eq!((cell.frame, cell.row % b, cell.col % b), (0, 0, 0));
            }
        }
    }

    #[test]
    fn every_image_token_is_produced_by_exactly_one_step(grid in grids()) {
        let schedule = ParSchedule::new(grid);
        let steps = schedule.steps();
        prop_assert_eq!(steps.len(), grid.num_steps());
        let mut produced = vec![0usize; grid.num_image_tokens()];
        for (index, step) in steps.iter().enumerate() {
            for target in step.targets() {
                produced[target] += 1;
                prop_assert_eq!(schedule.step_of_token(target), index);
            }
        }
        prop_assert!(produced.iter().all(|&count| count == 1));
    }

    #[test]
    fn a_step_sees_exactly_the_cache_and_itself(grid in grids()) {
        // Decode needs no mask: every fed slot may attend to all slots before the step's end, and
        // nothing after it (so no slot attends to a slot of a later step).
        let schedule = ParSchedule::new(grid);
        for step in schedule.steps() {
            for q in step.slots.clone() {
                prop_assert_eq!(schedule.visible_end(q), step.slots.end);
            }
        }
    }

    #[test]
    fn no_slot_attends_to_a_later_group(grid in grids()) {
        let schedule = ParSchedule::new(grid);
        let len = schedule.train_seq_length();
        let mask = schedule.attend_mask(len).unwrap();
        let n = grid.parallel();
        // Group of a slot: slots < n are their own groups; then blocks of n from slot n.
        let group = |s: usize| if s < n { s } else { n + (s - n) / n };
        for q in 0..len {
            prop_assert!(mask.get(q, 0), "class slot always visible");
            prop_assert!(mask.get(q, q), "every slot sees itself");
            for k in 0..len {
                if group(k) > group(q) {
                    prop_assert!(!mask.get(q, k), "slot {} sees later slot {}", q, k);
                }
                if group(k) <= group(q) {
                    prop_assert!(mask.get(q, k), "slot {} misses earlier-or-same-group slot {}", q, k);
                }
            }
        }
    }

    #[test]
    fn no_logit_sees_its_own_target(grid in grids()) {
        let schedule = ParSchedule::new(grid);
        let len = schedule.train_seq_length();
        let slots = schedule.slots(len).unwrap();
        for q in 0..len {
            let Some(target) = schedule.logit_target(q) else { continue };
            for (k, slot) in slots.iter().enumerate().take(schedule.visible_end(q).min(len)) {
                if let Slot::Token(t) = *slot {
                    prop_assert!(t < target, "logit {} (target t_{}) sees t_{} at slot {}", q, target, t, k);
                }
            }
        }
        prop_assert_eq!((0..len).filter(|&q| schedule.logit_target(q).is_some()).count(),
                        grid.num_image_tokens());
    }

    #[test]
    fn layout_holds_every_token_once_and_every_transition_token(grid in grids()) {
        let schedule = ParSchedule::new(grid);
        let slots = schedule.slots(schedule.max_seq_length()).unwrap();
        let tokens: Vec<usize> = slots.iter().filter_map(|s| match s { Slot::Token(k) => Some(*k), _ => None }).collect();
        prop_assert_eq!(tokens, (0..grid.num_image_tokens()).collect::<Vec<_>>());
        let transitions: Vec<usize> = slots.iter().filter_map(|s| match s { Slot::Transition(m) => Some(*m), _ => None }).collect();
        prop_assert_eq!(transitions, (0..grid.num_transition_tokens()).collect::<Vec<_>>());
        for k in 0..grid.num_image_tokens() {
            prop_assert_eq!(slots[schedule.slot_of_token(k)], Slot::Token(k));
        }
    }

    #[test]
    fn rope_cell_of_a_token_slot_is_its_raster_cell(grid in grids()) {
        let schedule = ParSchedule::new(grid);
        for k in 0..grid.num_image_tokens() {
            let cell = schedule.rope_cell(schedule.slot_of_token(k)).unwrap();
            prop_assert_eq!(grid.raster_index(cell), schedule.order().par_to_raster()[k]);
        }
    }

    #[test]
    fn invalid_parallel_degrees_are_rejected(l in 1usize..40, n in 1usize..200) {
        let m = n.isqrt();
        let valid = m * m == n && n <= l * l && l % m == 0;
        prop_assert_eq!(RegionGrid::image(l, n).is_ok(), valid);
    }
}
