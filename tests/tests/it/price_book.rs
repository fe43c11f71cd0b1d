//! The price book (BILLING.md, "Prices", "Token classes", "Volume tiers"), on both backends through
//! billing-svc's gRPC API:
//! - every token class is priced at its own rate: for each provider usage shape (OpenAI with cached,
//!   reasoning and audio details; Anthropic with cache reads and 5 min / 1 h cache writes) the charge is
//!   Σ class × price / 1000 × markup + fee, rounded once per side, exactly, and the provider cost the same at
//!   base prices; the operator sees revenue, provider cost and margin by model and day, a customer neither;
//! - an account's own price wins over the global row; ending rows falls back level by level, and a model
//!   no row prices is refused (NOT_FOUND `model_not_priced`) before anything is held;
//! - volume tiers switch at the threshold within a month and reset the next month;
//! - the ledger audit holds after each.

use rust_decimal::Decimal;
use serde_json::json;
use tests::in_process::{Billing, Stack};
use tests::{Backend, TestDatabase, assert_ledger_invariants, authed, backend_tests, bearer};

use proto::billing::v1 as pb;

backend_tests!(
    a_database_of_the_release_before_the_price_book_upgrades_in_place,
    every_token_class_is_priced_at_its_own_rate,
    an_accounts_own_price_wins_and_ended_rows_fall_back,
    volume_tiers_switch_at_the_threshold_and_reset_with_the_month,
);

fn dec(text: &str) -> Decimal {
    text.parse().unwrap()
}

/// Claude Sonnet's published prices per 1k tokens (USD 3 / 15 per million, cache read 0.30, 5 min write
/// 3.75, 1 h write 6), an invented audio rate, a fee and a markup.
fn claude_price(model: &str) -> pb::SetPriceRequest {
    pb::SetPriceRequest {
        model: model.into(),
        base_input_price_per_1k: "0.003".into(),
        base_output_price_per_1k: "0.015".into(),
        base_cached_input_price_per_1k: Some("0.0003".into()),
        base_cache_write_price_per_1k: Some("0.00375".into()),
        base_cache_write_1h_price_per_1k: Some("0.006".into()),
        base_audio_input_price_per_1k: Some("0.1".into()),
        base_audio_output_price_per_1k: Some("0.2".into()),
        request_fee: Some("0.001".into()),
        markup: Some("1.2".into()),
        ..Default::default()
    }
}

async fn set_price(billing: &Billing, request: pb::SetPriceRequest) -> pb::Price {
    billing
        .admin()
        .await
        .set_price(authed(&billing.admin_key, request))
        .await
        .expect("set price")
        .into_inner()
}

async fn end_price(billing: &Billing, model: &str, account_id: Option<&str>) -> pb::Price {
    billing
        .admin()
        .await
        .end_price(authed(
            &billing.admin_key,
            pb::EndPriceRequest {
                model: model.into(),
                account_id: account_id.map(str::to_string),
            },
        ))
        .await
        .expect("end price")
        .into_inner()
}

/// Settles `execution` of `key_id` directly (MeteringService/Settle), as a spooled settlement would.
async fn settle(
    billing: &Billing,
    key_id: &str,
    execution: &str,
    model: &str,
    (input, output): (u64, u64),
    classes: pb::TokenClasses,
) -> pb::UsageRecord {
    let mut request = tonic::Request::new(pb::SettleRequest {
        api_key_id: key_id.into(),
        execution_id: execution.into(),
        labels: Some(pb::Labels {
            model: model.into(),
            endpoint: "/v1/messages".into(),
            ..Default::default()
        }),
        input_tokens: input,
        output_tokens: output,
        status: pb::UsageStatus::Completed.into(),
        duration_ms: 5,
        classes: Some(classes),
        ..Default::default()
    });
    request
        .metadata_mut()
        .insert("authorization", bearer(&billing.service_token));
    billing
        .metering()
        .await
        .settle(request)
        .await
        .expect("settle")
        .into_inner()
        .usage
        .expect("usage record")
}

/// One side's cost, computed here independently: Σ tokens × price, × multiplier / 1000, rounded once to the
/// nano-dollar, halves away from zero.
fn side(classes: &[(u64, &str)], multiplier: Decimal) -> Decimal {
    let sum: Decimal = classes
        .iter()
        .map(|(tokens, price)| Decimal::from(*tokens) * dec(price))
        .sum();
    (sum * multiplier / Decimal::from(1000))
        .round_dp_with_strategy(9, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
}

async fn every_token_class_is_priced_at_its_own_rate(backend: Backend) {
    let billing = Billing::start(backend, &[]).await;
    set_price(&billing, claude_price("claude-sonnet-4-5")).await;
    let (key_id, key) = billing.create_key(pb::KeyType::Standard).await;
    billing.add_credits(&key_id, "10").await;
    let markup = dec("1.2");

    struct Shape {
        name: &'static str,
        tokens: (u64, u64),
        classes: pb::TokenClasses,
        input_side: Vec<(u64, &'static str)>,
        output_side: Vec<(u64, &'static str)>,
    }
    let shapes = [
        Shape {
            name: "OpenAI: cached, audio and reasoning details",
            tokens: (2_000, 500),
            classes: pb::TokenClasses {
                cached_input_tokens: 1_536,
                audio_input_tokens: 100,
                reasoning_tokens: 200,
                audio_output_tokens: 50,
                ..Default::default()
            },
            input_side: vec![(364, "0.003"), (1_536, "0.0003"), (100, "0.1")],
            output_side: vec![(450, "0.015"), (50, "0.2")],
        },
        Shape {
            name: "Anthropic: cache reads, 5 min and 1 h cache writes",
            tokens: (32_010, 500),
            classes: pb::TokenClasses {
                cached_input_tokens: 30_000,
                cache_write_tokens: 2_000,
                cache_write_1h_tokens: 500,
                ..Default::default()
            },
            input_side: vec![
                (10, "0.003"),
                (30_000, "0.0003"),
                (1_500, "0.00375"),
                (500, "0.006"),
            ],
            output_side: vec![(500, "0.015")],
        },
        Shape {
            name: "no class at all",
            tokens: (6_548, 108),
            classes: pb::TokenClasses::default(),
            input_side: vec![(6_548, "0.003")],
            output_side: vec![(108, "0.015")],
        },
    ];
    let mut revenue = Decimal::ZERO;
    let mut provider = Decimal::ZERO;
    for (index, shape) in shapes.iter().enumerate() {
        let record = settle(
            &billing,
            &key_id,
            &format!("classes-{index}"),
            "claude-sonnet-4-5",
            shape.tokens,
            shape.classes,
        )
        .await;
        let input = side(&shape.input_side, markup);
        let output = side(&shape.output_side, markup);
        assert_eq!(dec(&record.input_cost), input, "{}", shape.name);
        assert_eq!(dec(&record.output_cost), output, "{}", shape.name);
        assert_eq!(dec(&record.request_fee), dec("0.001"), "{}", shape.name);
        assert_eq!(
            dec(&record.total_cost),
            input + output + dec("0.001"),
            "{}",
            shape.name
        );
        let at_base =
            side(&shape.input_side, Decimal::ONE) + side(&shape.output_side, Decimal::ONE);
        assert_eq!(
            record.provider_cost.as_deref().map(dec),
            Some(at_base),
            "{}",
            shape.name
        );
        assert_eq!(record.classes, Some(shape.classes), "{}", shape.name);
        revenue += dec(&record.total_cost);
        provider += at_base;
    }

    // Classes that do not fit inside the totals are refused, nothing recorded.
    let mut refused = tonic::Request::new(pb::SettleRequest {
        api_key_id: key_id.clone(),
        execution_id: "classes-too-many".into(),
        labels: Some(pb::Labels {
            model: "claude-sonnet-4-5".into(),
            ..Default::default()
        }),
        input_tokens: 10,
        output_tokens: 1,
        status: pb::UsageStatus::Completed.into(),
        classes: Some(pb::TokenClasses {
            cached_input_tokens: 11,
            ..Default::default()
        }),
        ..Default::default()
    });
    refused
        .metadata_mut()
        .insert("authorization", bearer(&billing.service_token));
    let status = billing.metering().await.settle(refused).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");

    // The operator sees revenue, provider cost and margin by model and day; the customer neither.
    let stats = billing
        .admin()
        .await
        .get_account_stats(authed(
            &billing.admin_key,
            pb::GetAccountStatsRequest {
                api_key_id: key_id.clone(),
                range: None,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let totals = stats.totals.unwrap();
    assert_eq!(dec(&totals.total_cost), revenue);
    assert_eq!(dec(&totals.provider_cost), provider);
    assert_eq!(dec(&totals.margin), revenue - provider);
    assert_eq!(totals.classes.unwrap().cached_input_tokens, 31_536);
    assert_eq!(stats.by_model[0].model, "claude-sonnet-4-5");
    assert_eq!(stats.by_day.len(), 1);
    assert_eq!(
        dec(&stats.by_day[0].totals.as_ref().unwrap().margin),
        revenue - provider
    );
    let mine = billing
        .account()
        .await
        .get_stats(authed(&key, pb::GetStatsRequest::default()))
        .await
        .unwrap()
        .into_inner();
    let mine = mine.totals.unwrap();
    assert_eq!(dec(&mine.total_cost), revenue);
    assert!(mine.provider_cost.is_empty() && mine.margin.is_empty());
    let usage = billing
        .account()
        .await
        .list_usage(authed(&key, pb::ListUsageRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert!(
        usage
            .records
            .iter()
            .all(|record| record.provider_cost.is_none())
    );
    assert_ledger_invariants(&billing.database).await;
}

async fn an_accounts_own_price_wins_and_ended_rows_fall_back(backend: Backend) {
    let billing = Billing::start(backend, &[]).await;
    let (a_id, a_key) = billing.create_key(pb::KeyType::Standard).await;
    let (b_id, _) = billing.create_key(pb::KeyType::Standard).await;
    billing.add_credits(&a_id, "10").await;
    billing.add_credits(&b_id, "10").await;
    let a_account = billing.account_of(&a_key).await.account_id;
    let plain = |input: &str, output: &str, account: Option<&str>| pb::SetPriceRequest {
        model: "m".into(),
        base_input_price_per_1k: input.into(),
        base_output_price_per_1k: output.into(),
        markup: Some("1".into()),
        account_id: account.map(str::to_string),
        ..Default::default()
    };
    set_price(&billing, plain("0.002", "0.004", None)).await;
    let own = set_price(&billing, plain("0.001", "0.002", Some(&a_account))).await;
    assert_eq!(own.account_id, a_account);
    let cost = |record: pb::UsageRecord| dec(&record.total_cost);
    let none = pb::TokenClasses::default();
    assert_eq!(
        cost(settle(&billing, &a_id, "a-1", "m", (1000, 1000), none).await),
        dec("0.003")
    );
    assert_eq!(
        cost(settle(&billing, &b_id, "b-1", "m", (1000, 1000), none).await),
        dec("0.006")
    );

    // An account price for "*" is refused: tiers are the account-wide discount.
    let star = billing
        .admin()
        .await
        .set_price(authed(
            &billing.admin_key,
            pb::SetPriceRequest {
                model: "*".into(),
                ..plain("0.001", "0.001", Some(&a_account))
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(star.code(), tonic::Code::InvalidArgument);

    // Ending the account's row: the global row prices it again; ending that: the seed's "*".
    assert!(end_price(&billing, "m", Some(&a_account)).await.ended);
    assert_eq!(
        cost(settle(&billing, &a_id, "a-2", "m", (1000, 1000), none).await),
        dec("0.006")
    );
    end_price(&billing, "m", None).await;
    assert_eq!(
        cost(settle(&billing, &a_id, "a-3", "m", (1000, 1000), none).await),
        dec("0.06")
    );
    // Ending what is not in effect is NOT_FOUND.
    let again = billing
        .admin()
        .await
        .end_price(authed(
            &billing.admin_key,
            pb::EndPriceRequest {
                model: "m".into(),
                account_id: None,
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(again.code(), tonic::Code::NotFound);

    // With "*" ended, an unpriced model is refused at open, before anything is held.
    end_price(&billing, "*", None).await;
    let refused = billing
        .open(&a_key, "unpriced-1", 100, 100)
        .await
        .err()
        .expect("refused");
    let status = tests::grpc_status(refused);
    assert_eq!(status.code(), tonic::Code::NotFound, "{status:?}");
    assert!(status.message().contains("test-model"), "{status:?}");
    let account = billing.account_of(&a_key).await;
    assert_eq!(dec(&account.held_credits), Decimal::ZERO);
    let prices = billing
        .admin()
        .await
        .list_prices(authed(&billing.admin_key, pb::ListPricesRequest {}))
        .await
        .unwrap()
        .into_inner()
        .prices;
    assert_eq!(prices.iter().filter(|price| price.ended).count(), 3);
    assert_ledger_invariants(&billing.database).await;
}

async fn volume_tiers_switch_at_the_threshold_and_reset_with_the_month(backend: Backend) {
    let billing = Billing::start(backend, &[]).await;
    let (key_id, key) = billing.create_key(pb::KeyType::Standard).await;
    billing.add_credits(&key_id, "10").await;
    let account_id = billing.account_of(&key).await.account_id;
    let updated = billing
        .admin()
        .await
        .update_account(authed(
            &billing.admin_key,
            pb::UpdateAccountRequest {
                account_id: account_id.clone(),
                email: None,
                discount_tiers: Some(pb::DiscountTiers {
                    tiers: vec![
                        pb::DiscountTier {
                            from_monthly_spend: "0.2".into(),
                            percent_off: "25".into(),
                        },
                        pb::DiscountTier {
                            from_monthly_spend: "0.1".into(),
                            percent_off: "10".into(),
                        },
                    ],
                }),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.discount_tiers[0].from_monthly_spend, "0.1");
    let none = pb::TokenClasses::default();
    // The seed's price: 6,548 / 108 tokens cost 0.10308.
    let call = |n: u32| format!("tier-{n}");
    let first = settle(&billing, &key_id, &call(1), "m", (6548, 108), none).await;
    assert_eq!(
        (dec(&first.total_cost), first.discount_percent.as_str()),
        (dec("0.10308"), "0")
    );
    // 0.10308 spent: the 10 % tier applies to the next call, exactly 90 % of each side.
    let second = settle(&billing, &key_id, &call(2), "m", (6548, 108), none).await;
    assert_eq!(second.discount_percent, "10");
    assert_eq!(dec(&second.input_cost), dec("0.088398"));
    assert_eq!(dec(&second.output_cost), dec("0.004374"));
    // 0.19585 spent: still 10 %; then 25 % once past 0.2.
    let third = settle(&billing, &key_id, &call(3), "m", (6548, 108), none).await;
    assert_eq!(third.discount_percent, "10");
    let fourth = settle(&billing, &key_id, &call(4), "m", (6548, 108), none).await;
    assert_eq!(fourth.discount_percent, "25");
    assert_eq!(dec(&fourth.total_cost), dec("0.07731"));

    // A new month: the spend so far moves into the previous month (as time would move it), and the next
    // call is at list price again.
    let mut connection = billing.database.connect().await.unwrap();
    sqlx::query("UPDATE transactions SET timestamp = timestamp - 3456000000")
        .execute(&mut connection)
        .await
        .unwrap();
    tests::reseal_ledger_chain(&billing.database, &account_id).await;
    let fifth = settle(&billing, &key_id, &call(5), "m", (6548, 108), none).await;
    assert_eq!(
        (dec(&fifth.total_cost), fifth.discount_percent.as_str()),
        (dec("0.10308"), "0")
    );

    // Bad tiers are refused with the field named.
    let bad = billing
        .admin()
        .await
        .update_account(authed(
            &billing.admin_key,
            pb::UpdateAccountRequest {
                account_id,
                email: None,
                discount_tiers: Some(pb::DiscountTiers {
                    tiers: vec![pb::DiscountTier {
                        from_monthly_spend: "1".into(),
                        percent_off: "120".into(),
                    }],
                }),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
    assert!(bad.message().contains("percentOff"), "{bad:?}");
    assert_ledger_invariants(&billing.database).await;
}

/// The REST surface of the price book and the refusal of an unpriced model on every model API, through the
/// gateway: nothing is held and nothing recorded for a refused call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unpriced_model_is_refused_on_every_api_before_any_hold() {
    let stack = Stack::start(Backend::Sqlite).await;
    let admin = stack.billing.admin_key.clone();
    let key = stack.funded_key("unpriced", "5").await;

    // A row with every class, for one account; the list shows base and charged prices.
    let set = stack
        .post(
            "/admin/prices",
            &admin,
            json!({"model": "priced-model", "baseInputPricePer1k": 0.003, "baseOutputPricePer1k": 0.015,
                "baseCachedInputPricePer1k": 0.0003, "baseCacheWritePricePer1k": 0.00375,
                "baseCacheWrite1hPricePer1k": 0.006, "requestFee": 0.001}),
        )
        .await;
    assert_eq!(set.status, reqwest::StatusCode::CREATED, "{}", set.text);
    assert_eq!(
        set.json["markup"], 1.5,
        "the seed's default markup, said so"
    );
    assert_eq!(set.json["inputPricePer1k"].to_string(), "0.0045");
    assert_eq!(
        set.json["baseAudioOutputPricePer1k"].to_string(),
        "0.015",
        "defaults to output"
    );
    assert_eq!(set.json["ended"], false);

    // End the seed's "*": a model with no row of its own is now refused everywhere.
    let ended = stack
        .call(
            reqwest::Method::DELETE,
            "/admin/prices/%2A",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(ended.status, reqwest::StatusCode::OK, "{}", ended.text);
    assert_eq!(ended.json["ended"], true);
    let calls = [
        ("/execute", json!({"prompt": "hi", "model": "gpt-unpriced"})),
        (
            "/v1/chat/completions",
            json!({"model": "gpt-unpriced", "messages": [{"role": "user", "content": "hi"}]}),
        ),
        (
            "/v1/responses",
            json!({"model": "gpt-unpriced", "input": "hi"}),
        ),
        (
            "/v1/embeddings",
            json!({"model": "gpt-unpriced", "input": "hi"}),
        ),
        (
            "/v1/messages",
            json!({"model": "gpt-unpriced", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}),
        ),
    ];
    for (path, body) in calls {
        let refused = stack.post(path, &key, body).await;
        assert_eq!(
            refused.status,
            reqwest::StatusCode::NOT_FOUND,
            "{path}: {}",
            refused.text
        );
        let code = match path {
            "/v1/messages" => refused.json["error"]["type"].clone(),
            path if path.starts_with("/v1/") => refused.json["error"]["code"].clone(),
            _ => refused.json["code"].clone(),
        };
        let expected = if path == "/v1/messages" {
            "not_found_error"
        } else {
            "model_not_priced"
        };
        assert_eq!(code, expected, "{path}: {}", refused.text);
        assert!(
            refused.text.contains("gpt-unpriced"),
            "{path}: {}",
            refused.text
        );
    }
    let account = stack.get("/billing/account", &key).await;
    assert_eq!(account.json["heldCredits"], 0);
    let usage = stack.get("/billing/usage", &key).await;
    assert_eq!(
        usage.json["records"].as_array().unwrap().len(),
        0,
        "{}",
        usage.text
    );
    assert_ledger_invariants(&stack.billing.database).await;
}

/// The fixtures made by the release before the price book (tests/fixtures/make-v9-fixture.sh against its
/// services, then `sqlite3 … .dump` and `pg_dump --inserts`): carol with 5 USD, a gpt-4o-mini price row
/// (0.00015 / 0.0006, markup 1.2) beside the seed's `*`, a chat completion, an `/execute` call of 6,548 /
/// 108 tokens, an embedding, a refund, a daily cap and a low-balance alert. After the upgrade every row
/// keeps its meaning: the price rows price every new class at their defaults, old records have no classes
/// and no provider cost, the balance is unchanged, and new calls are priced by class.
async fn a_database_of_the_release_before_the_price_book_upgrades_in_place(backend: Backend) {
    let (database, _dir) = TestDatabase::from_fixture(backend, "billing-v9").await;
    let billing = Billing::start_on(database, &[]).await;
    let mut admin = billing.admin().await;
    let prices = admin
        .list_prices(authed(&billing.admin_key, pb::ListPricesRequest {}))
        .await
        .unwrap()
        .into_inner()
        .prices;
    assert_eq!(prices.len(), 2, "{prices:?}");
    let mini = prices
        .iter()
        .find(|price| price.model == "gpt-4o-mini")
        .unwrap();
    assert_eq!(
        (
            mini.base_cached_input_price_per_1k.as_str(),
            mini.base_cache_write_price_per_1k.as_str(),
            mini.base_cache_write_1h_price_per_1k.as_str(),
            mini.base_audio_input_price_per_1k.as_str(),
            mini.base_audio_output_price_per_1k.as_str(),
            mini.request_fee.as_str(),
            mini.account_id.as_str(),
            mini.ended,
        ),
        (
            "0.00015", "0.00015", "0.00015", "0.00015", "0.0006", "0", "", false
        )
    );
    let keys = admin
        .list_keys(authed(
            &billing.admin_key,
            pb::ListKeysRequest {
                include_revoked: true,
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .keys;
    let carol = keys.iter().find(|key| key.name == "fixture carol").unwrap();
    let view = admin
        .get_account(authed(
            &billing.admin_key,
            pb::GetAccountAdminRequest {
                account_id: carol.account_id.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let account = view.account.unwrap();
    let balance_before = dec(&account.credits_balance);
    assert!(account.discount_tiers.is_empty());
    let stats = admin
        .get_account_stats(authed(
            &billing.admin_key,
            pb::GetAccountStatsRequest {
                api_key_id: carol.id.clone(),
                range: None,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let totals = stats.totals.unwrap();
    assert_eq!(totals.requests, 3);
    // Old records keep no provider cost: none is counted, and no margin is claimed for them.
    assert_eq!(
        (dec(&totals.provider_cost), dec(&totals.margin)),
        (Decimal::ZERO, Decimal::ZERO)
    );
    assert_eq!(totals.classes.unwrap(), pb::TokenClasses::default());
    let seed_call = stats
        .by_model
        .iter()
        .find(|entry| entry.model == "mock-usage-6548-108")
        .unwrap();
    assert_eq!(
        dec(&seed_call.totals.as_ref().unwrap().total_cost),
        dec("0.10308")
    );

    // A new call on the upgraded database is priced by class, at the upgraded row.
    let record = settle(
        &billing,
        &carol.id,
        "after-upgrade",
        "gpt-4o-mini",
        (24_000, 800),
        pb::TokenClasses {
            cached_input_tokens: 22_528,
            ..Default::default()
        },
    )
    .await;
    // The cached tokens default to the input price on an upgraded row: 24,000 × 0.00015 × 1.2 / 1000.
    assert_eq!(dec(&record.input_cost), dec("0.00432"));
    assert_eq!(dec(&record.output_cost), dec("0.000576"));
    let after = billing
        .admin()
        .await
        .get_account(authed(
            &billing.admin_key,
            pb::GetAccountAdminRequest {
                account_id: carol.account_id.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .account
        .unwrap();
    assert_eq!(
        dec(&after.credits_balance),
        balance_before - dec(&record.total_cost)
    );
    assert_ledger_invariants(&billing.database).await;
}

/// Token classes reported by a real provider exchange reach the price book end to end: Claude Code-like
/// requests with cache breakpoints (5 min and 1 h) sent twice to a native Anthropic provider write the
/// cache, then read it; each record carries the classes, and its cost is each class at its own price. The
/// operator's stats show provider cost and margin; the customer's do not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn classes_reported_by_the_provider_are_priced_end_to_end() {
    // A process stack: the native provider's key is read from executor-svc's environment.
    let stack = tests::Stack::start_anthropic(Backend::Sqlite).await;
    let admin = stack.billing.admin_key.clone();
    let set = stack
        .post(
            "/admin/prices",
            &admin,
            json!({"model": "claude-sonnet-4-5", "baseInputPricePer1k": 0.003, "baseOutputPricePer1k": 0.015,
                "baseCachedInputPricePer1k": 0.0003, "baseCacheWritePricePer1k": 0.00375,
                "baseCacheWrite1hPricePer1k": 0.006, "markup": 1.2}),
        )
        .await;
    assert_eq!(set.status, reqwest::StatusCode::CREATED, "{}", set.text);
    let key = stack.funded_key("classes", "5").await;
    let request = json!({
        "model": "claude-sonnet-4-5", "max_tokens": 200,
        "system": [{"type": "text", "text": "You are terse and exact in every answer.", "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": [
            {"type": "text", "text": "say hello in five words", "cache_control": {"type": "ephemeral", "ttl": "1h"}}
        ]}],
    });
    for _ in 0..2 {
        let answer = stack.post("/v1/messages", &key, request.clone()).await;
        assert_eq!(answer.status, reqwest::StatusCode::OK, "{}", answer.text);
    }
    let usage = stack.get("/billing/usage", &key).await;
    let mut records = usage.json["records"].as_array().unwrap().clone();
    records.reverse();
    let count = |record: &serde_json::Value, name: &str| record[name].as_u64().unwrap();
    let (write, read) = (&records[0], &records[1]);
    assert!(
        count(write, "cacheWriteTokens") > 0 && count(write, "cacheWrite1hTokens") > 0,
        "{write}"
    );
    assert_eq!(count(write, "cachedInputTokens"), 0);
    assert!(count(read, "cachedInputTokens") > 0, "{read}");
    assert_eq!(count(read, "cacheWriteTokens"), 0, "{read}");
    for record in &records {
        let writes = count(record, "cacheWriteTokens");
        let writes_1h = count(record, "cacheWrite1hTokens");
        let cached = count(record, "cachedInputTokens");
        let plain = count(record, "inputTokens") - cached - writes;
        let input = side(
            &[
                (plain, "0.003"),
                (cached, "0.0003"),
                (writes - writes_1h, "0.00375"),
                (writes_1h, "0.006"),
            ],
            dec("1.2"),
        );
        let output = side(&[(count(record, "outputTokens"), "0.015")], dec("1.2"));
        assert_eq!(dec(&record["inputCost"].to_string()), input, "{record}");
        assert_eq!(
            dec(&record["totalCost"].to_string()),
            input + output,
            "{record}"
        );
        assert!(
            record.get("providerCost").is_none(),
            "a customer sees no provider cost"
        );
    }
    // The operator's stats: revenue, provider cost and margin; the customer's: revenue only.
    let account_id = stack.get("/billing/account", &key).await.json["accountId"]
        .as_str()
        .unwrap()
        .to_string();
    let operator = stack
        .get(&format!("/billing/admin/{account_id}/stats"), &admin)
        .await;
    assert_eq!(
        operator.status,
        reqwest::StatusCode::OK,
        "{}",
        operator.text
    );
    let totals = &operator.json["totals"];
    let revenue = dec(&totals["totalCost"].to_string());
    let provider = dec(&totals["providerCost"].to_string());
    assert_eq!(dec(&totals["margin"].to_string()), revenue - provider);
    assert!(
        provider > Decimal::ZERO && provider < revenue,
        "{}",
        operator.text
    );
    assert_eq!(
        operator.json["byDay"].as_array().unwrap().len(),
        1,
        "{}",
        operator.text
    );
    let customer = stack.get("/billing/stats", &key).await;
    assert!(
        customer.json["totals"].get("providerCost").is_none(),
        "{}",
        customer.text
    );
    assert!(
        customer.json["totals"].get("margin").is_none(),
        "{}",
        customer.text
    );
    assert_ledger_invariants(&stack.billing.database).await;
}

/// OpenAI's classes end to end: a long prompt sent twice is read from the mock's automatic prompt cache the
/// second time (`prompt_tokens_details.cached_tokens`, in 128-token blocks from 1,024 on), and a call with
/// `reasoning_effort` reports reasoning tokens inside its output; each is priced at its class's price.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_cached_and_reasoning_tokens_are_priced_end_to_end() {
    let stack = Stack::start(Backend::Sqlite).await;
    let admin = stack.billing.admin_key.clone();
    // OpenAI's gpt-4o-mini list prices: input 0.15, cached input 0.075, output 0.60 per million.
    let set = stack
        .post(
            "/admin/prices",
            &admin,
            json!({"model": "gpt-4o-mini", "baseInputPricePer1k": 0.00015,
                "baseCachedInputPricePer1k": 0.000075, "baseOutputPricePer1k": 0.0006, "markup": 1.2}),
        )
        .await;
    assert_eq!(set.status, reqwest::StatusCode::CREATED, "{}", set.text);
    let key = stack.funded_key("openai classes", "5").await;
    let long = "The ledger keeps every cent exact and every record settled once. ".repeat(120);
    let request = json!({"model": "gpt-4o-mini", "reasoning_effort": "high",
        "messages": [{"role": "system", "content": long}, {"role": "user", "content": "Hello"}]});
    let mut answers = Vec::new();
    for _ in 0..2 {
        let answer = stack
            .post("/v1/chat/completions", &key, request.clone())
            .await;
        assert_eq!(answer.status, reqwest::StatusCode::OK, "{}", answer.text);
        answers.push(answer.json["usage"].clone());
    }
    assert_eq!(answers[0]["prompt_tokens_details"]["cached_tokens"], 0);
    let cached = answers[1]["prompt_tokens_details"]["cached_tokens"]
        .as_u64()
        .unwrap();
    assert!(cached >= 1024 && cached % 128 == 0, "{}", answers[1]);
    let usage = stack.get("/billing/usage", &key).await;
    let mut records = usage.json["records"].as_array().unwrap().clone();
    records.reverse();
    let count = |record: &serde_json::Value, name: &str| record[name].as_u64().unwrap();
    assert_eq!(count(&records[1], "cachedInputTokens"), cached);
    for (record, reported) in records.iter().zip(&answers) {
        let reasoning = reported["completion_tokens_details"]["reasoning_tokens"]
            .as_u64()
            .unwrap();
        assert!(reasoning > 0, "{reported}");
        assert_eq!(count(record, "reasoningTokens"), reasoning, "{record}");
        let cached = count(record, "cachedInputTokens");
        let input = side(
            &[
                (count(record, "inputTokens") - cached, "0.00015"),
                (cached, "0.000075"),
            ],
            dec("1.2"),
        );
        // Reasoning is output, priced as output.
        let output = side(&[(count(record, "outputTokens"), "0.0006")], dec("1.2"));
        assert_eq!(dec(&record["inputCost"].to_string()), input, "{record}");
        assert_eq!(dec(&record["outputCost"].to_string()), output, "{record}");
    }
    assert!(
        dec(&records[1]["inputCost"].to_string()) < dec(&records[0]["inputCost"].to_string()),
        "the cached prompt costs less"
    );
    assert_ledger_invariants(&stack.billing.database).await;
}

/// The operator's views of money (issue 26): one account's calls (filtered by key, model and status, each
/// with its provider cost) and ledger rows, the overview over every account with the top accounts by
/// revenue; and the customer's own price list, charged prices only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_sees_each_accounts_calls_ledger_and_the_overview() {
    let stack = Stack::start(Backend::Sqlite).await;
    let admin = stack.billing.admin_key.clone();
    let big = stack.funded_key("big spender", "5").await;
    let small = stack.funded_key("small spender", "5").await;
    let chat =
        |model: &str| json!({"model": model, "messages": [{"role": "user", "content": "Hello"}]});
    for _ in 0..3 {
        let answer = stack
            .post("/v1/chat/completions", &big, chat("mock-usage-2000-500"))
            .await;
        assert_eq!(answer.status, reqwest::StatusCode::OK, "{}", answer.text);
    }
    let failed = stack
        .post("/v1/chat/completions", &big, chat("mock-fail-500"))
        .await;
    assert!(failed.status.is_server_error(), "{}", failed.text);
    stack
        .post("/v1/chat/completions", &small, chat("mock-usage-10-10"))
        .await;
    let account = stack.get("/billing/account", &big).await;
    let (account_id, key_id) = (
        account.json["accountId"].as_str().unwrap().to_string(),
        account.json["apiKeyId"].as_str().unwrap().to_string(),
    );

    let calls = stack
        .get(
            &format!("/admin/accounts/{account_id}/usage?status=completed&model=mock-usage-2000-500&apiKeyId={key_id}"),
            &admin,
        )
        .await;
    assert_eq!(calls.status, reqwest::StatusCode::OK, "{}", calls.text);
    let records = calls.json["records"].as_array().unwrap();
    assert_eq!(records.len(), 3, "{}", calls.text);
    for record in records {
        assert_eq!(record["status"], "completed");
        assert!(record["providerCost"].is_number(), "{record}");
        assert!(record["durationMs"].is_number() && record["endpoint"] == "/v1/chat/completions");
    }
    let failed_calls = stack
        .get(
            &format!("/admin/accounts/{account_id}/usage?status=failed"),
            &admin,
        )
        .await;
    assert_eq!(
        failed_calls.json["records"].as_array().unwrap().len(),
        1,
        "{}",
        failed_calls.text
    );
    // The customer filters its own calls the same way.
    let own_failed = stack.get("/billing/usage?status=failed", &big).await;
    assert_eq!(
        own_failed.json["records"].as_array().unwrap().len(),
        1,
        "{}",
        own_failed.text
    );
    let ledger = stack
        .get(
            &format!("/admin/accounts/{account_id}/transactions?type=usage_deduction"),
            &admin,
        )
        .await;
    assert_eq!(ledger.status, reqwest::StatusCode::OK, "{}", ledger.text);
    assert_eq!(
        ledger.json["transactions"].as_array().unwrap().len(),
        3,
        "{}",
        ledger.text
    );
    // A customer key is refused on the operator's routes.
    let refused = stack
        .get(&format!("/admin/accounts/{account_id}/usage"), &big)
        .await;
    assert_eq!(
        refused.status,
        reqwest::StatusCode::FORBIDDEN,
        "{}",
        refused.text
    );

    let overview = stack.get("/admin/stats?topAccounts=5", &admin).await;
    assert_eq!(
        overview.status,
        reqwest::StatusCode::OK,
        "{}",
        overview.text
    );
    let top = overview.json["topAccounts"].as_array().unwrap();
    assert_eq!(top.len(), 2, "{}", overview.text);
    assert_eq!(top[0]["name"], "big spender");
    let revenue = |totals: &serde_json::Value| dec(&totals["totalCost"].to_string());
    assert_eq!(
        revenue(&overview.json["totals"]),
        revenue(&top[0]["totals"]) + revenue(&top[1]["totals"])
    );
    let totals = &overview.json["totals"];
    assert_eq!(
        dec(&totals["margin"].to_string()),
        revenue(totals) - dec(&totals["providerCost"].to_string())
    );
    assert_eq!(overview.json["byDay"].as_array().unwrap().len(), 1);

    // The customer's price list: what it pays, never the base price or the markup.
    stack
        .post(
            "/admin/prices",
            &admin,
            json!({"model": "gpt-4o-mini", "baseInputPricePer1k": 0.00015, "baseOutputPricePer1k": 0.0006,
                "baseCachedInputPricePer1k": 0.000075, "markup": 1.2, "accountId": account_id}),
        )
        .await;
    let prices = stack.get("/billing/prices", &big).await;
    assert_eq!(prices.status, reqwest::StatusCode::OK, "{}", prices.text);
    let list = prices.json["prices"].as_array().unwrap();
    let mini = list
        .iter()
        .find(|price| price["model"] == "gpt-4o-mini")
        .unwrap();
    assert_eq!(mini["inputPricePer1k"].to_string(), "0.00018");
    assert_eq!(mini["cachedInputPricePer1k"].to_string(), "0.00009");
    assert!(mini.get("markup").is_none() && mini.get("baseInputPricePer1k").is_none());
    assert!(list.iter().any(|price| price["model"] == "*"));
    let others = stack.get("/billing/prices", &small).await;
    assert!(
        !others.json["prices"]
            .as_array()
            .unwrap()
            .iter()
            .any(|price| price["model"] == "gpt-4o-mini"),
        "another account's own price is not listed: {}",
        others.text
    );
    assert_ledger_invariants(&stack.billing.database).await;
}
