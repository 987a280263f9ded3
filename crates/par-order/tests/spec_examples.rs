//! The worked examples of docs/spec.md §1.2, §1.3 and §2.2, value by value.

use par_order::{
    Arrangement, GroupAttention, OrderError, ParSchedule, RegionGrid, ScheduleVariant, Slot,
    StepKind, TokenOrder,
};

fn order(grid_size: usize, parallel: usize) -> TokenOrder {
    TokenOrder::new(RegionGrid::image(grid_size, parallel).unwrap())
}

#[test]
fn four_by_four_four_regions_order_and_inverse() {
    let o = order(4, 4);
    assert_eq!(o.par_to_raster(), &[0, 2, 8, 10, 1, 3, 9, 11, 4, 6, 12, 14, 5, 7, 13, 15]);
    assert_eq!(o.raster_to_par(), &[0, 4, 1, 5, 8, 12, 9, 13, 2, 6, 3, 7, 10, 14, 11, 15]);
}

#[test]
fn four_by_four_sixteen_regions_is_identity_and_fully_sequential() {
    let o = order(4, 16);
    assert_eq!(o.par_to_raster(), (0..16).collect::<Vec<_>>().as_slice());
    assert_eq!(RegionGrid::image(4, 16).unwrap().num_steps(), 16);
    let schedule = ParSchedule::new(RegionGrid::image(4, 16).unwrap());
    let kinds: Vec<_> = schedule.steps().iter().map(|s| s.kind).collect();
    assert_eq!(kinds[0], StepKind::Prefill);
    assert!(kinds[1..].iter().all(|&k| k == StepKind::Sequential));
}

#[test]
fn raster_order_for_one_region() {
    for l in [1, 3, 16, 24] {
        let o = order(l, 1);
        assert_eq!(o.par_to_raster(), (0..l * l).collect::<Vec<_>>().as_slice());
    }
}

#[test]
fn eight_by_eight_prefix() {
    assert_eq!(
        &order(8, 4).par_to_raster()[..16],
        &[0, 4, 32, 36, 1, 5, 33, 37, 2, 6, 34, 38, 3, 7, 35, 39]
    );
}

#[test]
fn sixteen_by_sixteen_prefixes() {
    assert_eq!(&order(16, 4).par_to_raster()[..8], &[0, 8, 128, 136, 1, 9, 129, 137]);
    let o16 = order(16, 16);
    assert_eq!(
        &o16.par_to_raster()[..16],
        &[0, 4, 8, 12, 64, 68, 72, 76, 128, 132, 136, 140, 192, 196, 200, 204]
    );
    assert_eq!(&o16.par_to_raster()[16..20], &[1, 5, 9, 13]);
}

#[test]
fn twenty_four_by_twenty_four_prefixes() {
    assert_eq!(
        &order(24, 4).par_to_raster()[..12],
        &[0, 12, 288, 300, 1, 13, 289, 301, 2, 14, 290, 302]
    );
    let o16 = order(24, 16);
    assert_eq!(
        &o16.par_to_raster()[..16],
        &[0, 6, 12, 18, 144, 150, 156, 162, 288, 294, 300, 306, 432, 438, 444, 450]
    );
    assert_eq!(&o16.par_to_raster()[16..20], &[1, 7, 13, 19]);
}

#[test]
fn step_counts_of_spec_table() {
    let image = |l, n| RegionGrid::image(l, n).unwrap().num_steps();
    assert_eq!([image(16, 1), image(16, 4), image(16, 16)], [256, 67, 31]);
    assert_eq!([image(24, 1), image(24, 4), image(24, 16)], [576, 147, 51]);
    assert_eq!([image(32, 1), image(32, 4), image(32, 16)], [1024, 259, 79]);
    let video = |n| RegionGrid::video(5, 16, n).unwrap().num_steps();
    assert_eq!([video(1), video(4), video(16)], [1280, 323, 95]);
}

#[test]
fn schedule_has_as_many_steps_as_the_formula() {
    for (frames, l, n) in
        [(1, 16, 1), (1, 24, 4), (1, 24, 16), (1, 32, 16), (5, 16, 4), (5, 16, 16)]
    {
        let grid = RegionGrid::video(frames, l, n).unwrap();
        assert_eq!(ParSchedule::new(grid).steps().len(), grid.num_steps());
    }
}

#[test]
fn four_by_four_schedule() {
    let s = ParSchedule::new(RegionGrid::image(4, 4).unwrap());
    let steps: Vec<_> = s.steps().into_iter().map(|st| (st.kind, st.slots)).collect();
    use StepKind::*;
    assert_eq!(
        steps,
        vec![
            (Prefill, 0..1),
            (Sequential, 1..2),
            (Sequential, 2..3),
            (Sequential, 3..4),
            (Transition, 4..8),
            (Parallel, 8..12),
            (Parallel, 12..16),
        ]
    );
    assert_eq!(s.train_seq_length(), 19);
    assert_eq!(s.max_seq_length(), 20);
    assert_eq!(s.decode_seq_length(), 16);
}

#[test]
fn four_by_four_layout_matches_spec_header() {
    // C t0 t1 t2 t3 M1 M2 M3 t4 … t15 (spec §2.2 header; M_m is transition index m−1).
    let s = ParSchedule::new(RegionGrid::image(4, 4).unwrap());
    let mut expected = vec![Slot::Class];
    expected.extend((0..4).map(Slot::Token));
    expected.extend((0..3).map(Slot::Transition));
    expected.extend((4..16).map(Slot::Token));
    assert_eq!(s.slots(20).unwrap(), expected);
    assert_eq!(s.slot(20), None);
    // Logit at slot p predicts t_p; the trailing n−1 training slots predict nothing.
    assert_eq!((0..19).map(|p| s.logit_target(p)).collect::<Vec<_>>(), {
        let mut t: Vec<_> = (0..16).map(Some).collect();
        t.extend([None, None, None]);
        t
    });
}

#[test]
fn four_by_four_attention_matrix_of_spec() {
    // docs/spec.md §2.2, rows C, t0 … t15 (rows t13–t15 identical to t12), 1 = may attend.
    let rows = [
        "10000000000000000000", // C
        "11000000000000000000", // t0
        "11100000000000000000", // t1
        "11110000000000000000", // t2
        "11111111000000000000", // t3
        "11111111000000000000", // M1
        "11111111000000000000", // M2
        "11111111000000000000", // M3
        "11111111111100000000", // t4
        "11111111111100000000", // t5
        "11111111111100000000", // t6
        "11111111111100000000", // t7
        "11111111111111110000", // t8
        "11111111111111110000", // t9
        "11111111111111110000", // t10
        "11111111111111110000", // t11
        "11111111111111111111", // t12
        "11111111111111111111", // t13
        "11111111111111111111", // t14
        "11111111111111111111", // t15
    ];
    let mask = ParSchedule::new(RegionGrid::image(4, 4).unwrap()).attend_mask(20).unwrap();
    for (q, row) in rows.iter().enumerate() {
        for (k, c) in row.chars().enumerate() {
            assert_eq!(mask.get(q, k), c == '1', "entry ({q}, {k})");
        }
    }
    // Training uses the top-left 19×19 block of the same matrix.
    let train = ParSchedule::new(RegionGrid::image(4, 4).unwrap()).attend_mask(19).unwrap();
    for q in 0..19 {
        assert_eq!(train.row(q), &mask.row(q)[..19]);
    }
}

#[test]
fn raster_order_mask_is_causal() {
    let mask = ParSchedule::new(RegionGrid::image(3, 1).unwrap()).attend_mask(10).unwrap();
    for q in 0..10 {
        for k in 0..10 {
            assert_eq!(mask.get(q, k), k <= q);
        }
    }
}

#[test]
fn rope_cells_have_zero_rows_for_class_and_transition_slots() {
    // Spec §2.3: [zeros×cls] + [PAR cells 0..n−1] + [zeros×(n−1)] + [PAR cells n..N−1].
    let s = ParSchedule::new(RegionGrid::image(4, 4).unwrap());
    let cells = s.rope_cells(20).unwrap();
    let rc = |c: Option<par_order::CellPosition>| c.map(|c| (c.row, c.col));
    assert_eq!(rc(cells[0]), None);
    assert_eq!(
        cells[1..5].iter().map(|&c| rc(c)).collect::<Vec<_>>(),
        vec![Some((0, 0)), Some((0, 2)), Some((2, 0)), Some((2, 2))]
    );
    assert!(cells[5..8].iter().all(Option::is_none));
    // t4..t7 = raster 1, 3, 9, 11.
    assert_eq!(
        cells[8..12].iter().map(|&c| rc(c)).collect::<Vec<_>>(),
        vec![Some((0, 1)), Some((0, 3)), Some((2, 1)), Some((2, 3))]
    );
    assert_eq!(rc(cells[19]), Some((3, 3)));
}

#[test]
fn video_order_is_frame_major_inside_regions() {
    // p = ((t·b + i)·b + j)·n + (a·M + c); 2 frames of 4×4, n = 4.
    let o = TokenOrder::new(RegionGrid::video(2, 4, 4).unwrap());
    let first_frame = [0, 2, 8, 10, 1, 3, 9, 11, 4, 6, 12, 14, 5, 7, 13, 15];
    assert_eq!(&o.par_to_raster()[..16], &first_frame);
    let second: Vec<_> = first_frame.iter().map(|r| r + 16).collect();
    assert_eq!(&o.par_to_raster()[16..], second.as_slice());
    let s = ParSchedule::new(RegionGrid::video(2, 4, 4).unwrap());
    let cell = s.rope_cell(s.slot_of_token(16)).unwrap();
    assert_eq!((cell.frame, cell.row, cell.col), (1, 0, 0));
}

#[test]
fn invalid_configurations_return_their_error() {
    use OrderError::*;
    assert_eq!(RegionGrid::image(0, 4), Err(ZeroGridSize));
    assert_eq!(RegionGrid::image(16, 0), Err(ZeroRegions));
    assert_eq!(RegionGrid::video(0, 16, 4), Err(ZeroFrames));
    assert_eq!(RegionGrid::image(16, 2), Err(NotPerfectSquare { parallel: 2 }));
    assert_eq!(RegionGrid::image(16, 8), Err(NotPerfectSquare { parallel: 8 }));
    assert_eq!(
        RegionGrid::image(10, 16),
        Err(GridNotDivisible { grid_size: 10, regions_per_side: 4 })
    );
    assert_eq!(
        RegionGrid::image(2, 16),
        Err(TooManyRegions { parallel: 16, grid_size: 2, cells: 4 })
    );
    assert_eq!(
        RegionGrid::image(usize::MAX, 1),
        Err(TooLarge { frames: 1, grid_size: usize::MAX })
    );
    assert_eq!(
        RegionGrid::video(usize::MAX, 1 << 20, 1),
        Err(TooLarge { frames: usize::MAX, grid_size: 1 << 20 })
    );
    // Indexable but too big to tabulate: 4096² = 2^24 tokens + 1 slot.
    assert_eq!(RegionGrid::image(4096, 1), Err(TooLarge { frames: 1, grid_size: 4096 }));
    assert!(RegionGrid::image(4095, 1).is_ok());
    assert_eq!(
        RegionGrid::video(1_000_000_000_000, 4, 4),
        Err(TooLarge { frames: 1_000_000_000_000, grid_size: 4 })
    );
    let o = order(4, 4);
    assert_eq!(o.permute(&[0; 15]), Err(TokenCount { expected: 16, actual: 15 }));
    assert_eq!(o.unpermute(&[0; 17]), Err(TokenCount { expected: 16, actual: 17 }));
    let s = ParSchedule::new(RegionGrid::image(4, 4).unwrap());
    assert_eq!(s.attend_mask(21), Err(SequenceTooLong { requested: 21, max: 20 }));
    assert_eq!(s.rope_cells(21), Err(SequenceTooLong { requested: 21, max: 20 }));
}

#[test]
fn errors_read_as_one_line() {
    for e in [
        RegionGrid::image(16, 2).unwrap_err(),
        RegionGrid::image(10, 16).unwrap_err(),
        RegionGrid::image(2, 16).unwrap_err(),
    ] {
        let text = e.to_string();
        assert!(!text.contains('\n'), "{text}");
    }
    assert_eq!(
        RegionGrid::image(10, 16).unwrap_err().to_string(),
        "4×4 regions (parallel degree 16) do not tile a 10×10 grid: 4 does not divide 10"
    );
}

#[test]
fn generation_groups_of_the_four_by_four_example() {
    // docs/ordering.md: PAR order 0 2 8 10 | 1 3 9 11 | 4 6 12 14 | 5 7 13 15, steps of 1,1,1,1,4,4,4.
    let grid = RegionGrid::image(4, 4).unwrap();
    let schedule = ParSchedule::new(grid);
    assert_eq!(
        schedule.generation_groups(),
        vec![
            vec![0],
            vec![2],
            vec![8],
            vec![10],
            vec![1, 3, 9, 11],
            vec![4, 6, 12, 14],
            vec![5, 7, 13, 15]
        ]
    );
    // Raster, multi: the same schedule over raster cells, groups of 4 adjacent tokens.
    let raster = ScheduleVariant { arrangement: Arrangement::Raster, ..ScheduleVariant::par() };
    assert_eq!(
        ParSchedule::with_variant(grid, raster).generation_groups(),
        vec![
            vec![0],
            vec![1],
            vec![2],
            vec![3],
            vec![4, 5, 6, 7],
            vec![8, 9, 10, 11],
            vec![12, 13, 14, 15]
        ]
    );
}

#[test]
fn ablation_variants_of_the_four_by_four_example() {
    let grid = RegionGrid::image(4, 4).unwrap();
    // Table 4(a), without the sequential start: [class | tr0 tr1 tr2 | t0 …], 16/4 = 4 steps.
    let no_start = ScheduleVariant { sequential_start: false, ..ScheduleVariant::par() };
    let s = ParSchedule::with_variant(grid, no_start);
    assert_eq!(s.num_steps(), 4);
    assert_eq!(
        s.slots(6).unwrap(),
        vec![
            Slot::Class,
            Slot::Transition(0),
            Slot::Transition(1),
            Slot::Transition(2),
            Slot::Token(0),
            Slot::Token(1)
        ]
    );
    let steps: Vec<_> = s.steps().into_iter().map(|st| (st.kind, st.slots)).collect();
    assert_eq!(
        steps,
        vec![
            (StepKind::Prefill, 0..4),
            (StepKind::Parallel, 4..8),
            (StepKind::Parallel, 8..12),
            (StepKind::Parallel, 12..16)
        ]
    );
    // Blocks of 4 from slot 0: slot 1 (a transition token) sees slots 0..4, slot 5 sees 0..8.
    assert_eq!((s.visible_end(1), s.visible_end(5)), (4, 8));
    assert_eq!((s.slot_of_token(0), s.step_of_token(5)), (4, 1));
    assert_eq!(s.rope_cell(2), None, "transition slots keep zero RoPE rows");
    assert_eq!(s.rope_cell(4).unwrap().row, 0);
    // Table 4(c), causal attention inside a group: a plain causal mask, steps unchanged.
    let causal =
        ScheduleVariant { group_attention: GroupAttention::Causal, ..ScheduleVariant::par() };
    let c = ParSchedule::with_variant(grid, causal);
    assert_eq!(c.num_steps(), 7);
    assert!(c.step_is_causal() && !ParSchedule::new(grid).step_is_causal());
    // Slots 4…7 form the first parallel block: PAR lets slot 4 see slot 7, causal does not.
    let par = ParSchedule::new(grid);
    assert!(par.attends(4, 7) && !c.attends(4, 7) && c.attends(7, 4));
    let len = c.max_seq_length();
    let mask = c.attend_mask(len).unwrap();
    let lower: Vec<bool> = (0..len * len).map(|i| i % len <= i / len).collect();
    assert_eq!(mask.as_slice(), &lower[..], "causal group attention: a lower-triangular mask");
    assert_ne!(par.attend_mask(len).unwrap().as_slice(), &lower[..]);
    // Every variant's steps tile 0 … N and its groups cover every cell once.
    for v in [
        no_start,
        causal,
        ScheduleVariant { arrangement: Arrangement::Raster, ..ScheduleVariant::par() },
    ] {
        let s = ParSchedule::with_variant(grid, v);
        let mut cells: Vec<usize> = s.generation_groups().concat();
        cells.sort();
        assert_eq!(cells, (0..16).collect::<Vec<_>>(), "{v:?}");
        assert_eq!(s.steps().len(), s.num_steps());
    }
}
