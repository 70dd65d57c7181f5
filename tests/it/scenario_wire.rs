//! A scenario reaches the wire: with the bridge on, a consumer bound to
//! `features` receives sklearn's scaled features of data rows up to the
//! scenario's start, and from it on the same with bmi shifted by 5 raw
//! units, re-scaled as sklearn scales it (what the model was sent, checked
//! against the tests' own oracle of the data, not the code under test).
//! Needs the real broker; takes [`broker_lock`] (it reads `ml_pipeline`).

use std::time::Duration;

use crate::support::amqp::*;

/// 5 raw units of bmi on sklearn's scale:
/// /work/venv-sci/bin/python -c "import numpy as np;
///   X=np.loadtxt('data/diabetes.csv',delimiter=',',skiprows=1)[:,:10];
///   print(repr(5/(X[:,2].std()*np.sqrt(len(X)))))"  ->  0.053890603694039974
const BMI_PLUS_5_SCALED: f64 = 0.053890603694039974;
const BMI: usize = 2;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wire_carries_the_shifted_features_from_the_start_on() {
    let _serial = broker_lock().await;
    wait_for_broker(Duration::from_secs(60)).await;
    let queue = TestQueue::declare("scenario-features", "features").await;
    let run = App::builder()
        .args(&[
            "--count",
            "600",
            "--rate",
            "0",
            "--seed",
            "4",
            "--amqp-url",
            BROKER_URL,
            "--scenario",
            "start=300,bmi+=5",
        ])
        .env("MODELWATCH__MONITOR__ENABLED", "false")
        .start()
        .finish(Duration::from_secs(60))
        .await;
    run.assert_exit_ok();
    let mut msgs = queue.drain(Duration::from_secs(30)).await;
    queue.delete().await;
    assert_eq!(msgs.len(), 600);
    // Ids increase in the order the source emits.
    msgs.sort_by_key(|m| m.id().expect("an id"));
    for (i, m) in msgs.iter().enumerate() {
        let xs: Vec<f64> = m.json.as_ref().expect("JSON")["body"]
            .as_array()
            .expect("a list of features")
            .iter()
            .map(|v| v.as_f64().expect("a number"))
            .collect();
        assert_eq!(xs.len(), 10);
        if i < 300 {
            assert!(
                oracle::row_of_features(&xs).is_some(),
                "sample {i}: not a data row: {xs:?}"
            );
            continue;
        }
        let mut unshifted = xs.clone();
        unshifted[BMI] -= BMI_PLUS_5_SCALED;
        let row = oracle::row_of_features(&unshifted)
            .unwrap_or_else(|| panic!("sample {i}: not a data row with bmi + 5: {xs:?}"));
        let r = oracle::rows()[row];
        assert!(
            (xs[BMI] - r.scaled[BMI] - BMI_PLUS_5_SCALED).abs() < 1e-12,
            "sample {i}"
        );
    }
}
