//! The store test kit: every rule of the [`SessionStore`] contract, to run against your
//! own store (feature `testing`). The crate's own stores pass exactly these.
//!
//! In a test file of your crate, [`store_suite!`](crate::store_suite) makes one
//! `#[test]` per rule, so a failure names the rule:
//!
//! ```
//! # #[cfg(feature = "testing")] mod suite {
//! use std::sync::Arc;
//! use rocket_server_sessions::{testing::Store, store::MemoryStore};
//!
//! // `mod memory` with one test per rule, each on a fresh store.
//! rocket_server_sessions::store_suite!(memory, async {
//!     Arc::new(MemoryStore::default()) as Store
//! });
//! # }
//! ```
//!
//! [`check_store`] runs them all in one test, and reports every rule that failed.
//! The [`store`](crate::store) module's example store runs it. A rule takes a few seconds
//! at most: the expiry rules wait for a 400 ms lifetime to pass.

use std::future::Future;
use std::sync::Arc;

use rocket::futures::future::BoxFuture;

use crate::store::SessionStore;

/// A store under test, as the rules take it.
pub type Store = Arc<dyn SessionStore>;

mod caps;
pub mod rules;
mod sign_in;

pub use caps::check_caps;
pub(crate) use sign_in::SigningIn;
pub use sign_in::{sign_in, sign_in_blocking};

/// Calls `$then!($($args)*; rule, rule, ...)` with the name of every rule: the one list
/// of them, for [`store_suite!`](crate::store_suite) and [`RULES`].
#[doc(hidden)]
#[macro_export]
macro_rules! __for_each_store_rule {
    ([$($then:tt)*] $($args:tt)*) => {
        $($then)*! { $($args)*;
            load_of_an_unknown_id_is_none,
            create_then_load_returns_the_record,
            sessions_are_isolated,
            create_never_overwrites_a_live_session,
            create_may_reuse_an_expired_id,
            commit_sets_and_removes_only_the_changed_entries,
            commits_to_different_entries_both_survive,
            concurrent_commits_to_different_entries_all_survive,
            concurrent_calls_on_many_sessions_each_get_their_own_answer,
            commit_to_a_missing_session_writes_nothing,
            commit_after_delete_does_not_resurrect,
            an_expired_session_is_absent_everywhere,
            commit_without_ttl_keeps_the_expiry,
            commit_with_ttl_resets_the_expiry_and_lifetime,
            touch_extends_the_expiry_without_rewriting_data,
            touches_racing_commits_undo_none_of_them,
            delete_is_idempotent_and_says_whether_it_held_the_session,
            values_round_trip_exactly,
            sealed_at_rest_the_store_holds_no_value_in_the_clear,
            an_empty_record_is_a_live_session,
            a_log_in_joins_its_users_list_and_a_log_out_leaves_it,
            a_users_list_drops_sessions_that_expired,
            revoking_all_leaves_no_session_of_the_user_usable,
            a_public_id_revokes_only_its_users_session,
            concurrent_log_ins_of_one_user_all_appear,
            a_list_lives_as_long_as_a_session_given_longer,
            a_session_on_no_list_is_put_back_when_it_lives_longer
        }
    };
}

/// Makes `mod $name` with one `#[rocket::async_test]` per rule of the store contract,
/// each on a fresh store from `$make`: an `async` block that gives a [`Store`], or an
/// `Option<Store>` where `None` skips the rule (a server that is not configured).
///
/// # Example
///
/// ```
/// # #[cfg(feature = "testing")] mod suite {
/// use std::sync::Arc;
/// use rocket_server_sessions::{testing::Store, store::MemoryStore};
///
/// rocket_server_sessions::store_suite!(memory, async {
///     Arc::new(MemoryStore::default()) as Store
/// });
/// # }
/// ```
#[macro_export]
macro_rules! store_suite {
    ($name:ident, $make:expr) => {
        $crate::__for_each_store_rule!([$crate::__store_suite_tests] $name, $make);
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __store_suite_tests {
    ($name:ident, $make:expr; $($rule:ident),* $(,)?) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[::rocket::async_test]
                async fn $rule() {
                    let store: ::std::option::Option<$crate::testing::Store> =
                        ::std::convert::Into::into($make.await);
                    let ::std::option::Option::Some(store) = store else { return };
                    $crate::testing::rules::$rule(store).await;
                }
            )*
        }
    };
}

macro_rules! rule_table {
    (; $($rule:ident),* $(,)?) => {
        &[$((stringify!($rule), |store| Box::pin(rules::$rule(store)))),*]
    };
}

/// A rule: its name, and the rule to run on a store.
pub type Rule = (&'static str, fn(Store) -> BoxFuture<'static, ()>);

/// Every rule of the store contract, by name.
pub const RULES: &[Rule] = crate::__for_each_store_rule!([rule_table]);

/// Runs every rule against a fresh store from `make` each, and panics naming every rule
/// that failed (each rule runs in a task of its own, so one failure does not hide another).
///
/// # Panics
///
/// When the store breaks a rule: the message names each rule it broke.
///
/// # Example
///
/// ```
/// # #[cfg(feature = "testing")]
/// # rocket::async_test(async {
/// use std::sync::Arc;
/// use rocket_server_sessions::{testing, store::MemoryStore};
///
/// testing::check_store(|| async { Arc::new(MemoryStore::default()) as testing::Store }).await;
/// # });
/// ```
pub async fn check_store<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Store>,
{
    let mut failed = Vec::new();
    for (name, rule) in RULES {
        let store = make().await;
        if tokio::spawn(rule(store)).await.is_err() {
            failed.push(*name);
        }
    }
    assert!(
        failed.is_empty(),
        "the store breaks these rules of the store contract: {}",
        failed.join(", ")
    );
}
