//! `[plans.<name>]`: the billing plans' limits, built in for free/pro/team, amended by ledge.toml or
//! `LEDGE_PLANS__<NAME>__<KEY>`, `"unlimited"` for no limit.

use ledge_config::PlanConfig;

use crate::{Workspace, problems_of};

#[test]
fn free_pro_and_team_are_built_in_with_growing_limits() {
    let config = Workspace::empty().config(&[]);
    let names: Vec<_> = config.plans.keys().map(String::as_str).collect();
    assert_eq!(names, ["free", "pro", "team"]);
    let limits = |plan: &PlanConfig| {
        [plan.repositories, plan.indexed_files, plan.searches_per_day, plan.chat_messages_per_day]
    };
    let (free, pro, team) =
        (limits(&config.plans["free"]), limits(&config.plans["pro"]), limits(&config.plans["team"]));
    assert_eq!(free, [Some(3), Some(10_000), Some(200), Some(50)]);
    for i in 0..4 {
        assert!(free[i] < pro[i] && pro[i] < team[i], "limit {i}: {free:?} {pro:?} {team:?}");
    }
    assert!(config.plans.values().all(|plan| plan.stripe_price.is_none()));
}

#[test]
fn a_file_and_the_environment_amend_a_plan_and_a_file_can_add_one() {
    let config = Workspace::with_config(
        "[plans.pro]\n\
         stripe_price = \"price_pro_monthly\"\n\
         searches_per_day = \"unlimited\"\n\
         [plans.enterprise]\n\
         repositories = 1000\n",
    )
    .config(&[("LEDGE_PLANS__FREE__SEARCHES_PER_DAY", "5")]);
    let pro = config.plan("pro").unwrap();
    assert_eq!(pro.stripe_price.as_deref(), Some("price_pro_monthly"));
    assert_eq!(pro.searches_per_day, None);
    assert_eq!(pro.repositories, Some(25), "the other limits keep their defaults");
    assert_eq!(config.plan("free").unwrap().searches_per_day, Some(5));
    let enterprise = config.plan("enterprise").unwrap();
    assert_eq!(enterprise.repositories, Some(1000));
    assert_eq!(enterprise.searches_per_day, Some(0), "a new plan allows nothing it does not name");
    let rendered = config.render();
    assert!(rendered.contains("[plans.pro]\nrepositories = 25\n"), "{rendered}");
    assert!(rendered.contains("searches_per_day = \"unlimited\""), "{rendered}");
}

#[test]
fn bad_limits_are_located() {
    let problems = problems_of(
        "[plans.free]\nrepositories = -1\nsearches_per_day = \"lots\"\nstripe_price = \"price 1\"\n",
    );
    assert!(
        problems.contains("ledge.toml:2:16: plans.free.repositories: must be 0..=1000000000000, got -1"),
        "{problems}"
    );
    assert!(problems.contains("plans.free.searches_per_day: expected a number"), "{problems}");
    assert!(problems.contains("ledge.toml:4:16: plans.free.stripe_price"), "{problems}");
}
