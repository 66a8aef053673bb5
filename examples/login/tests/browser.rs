//! examples/login in a real headless Chromium, driven through chromedriver: a stranger is
//! sent to the login form, signs in, lands back where they were going, signs out, and
//! finds the dashboard closed again; a user signed in on two browsers signs the other out.
//!
//! Needs Debian's `chromium` and `chromium-driver` (scripts/test.sh installs them). Under
//! `CI=true` their absence fails the test; elsewhere it is skipped with a message.

#[path = "../../../tests/common/mod.rs"]
mod common;

#[path = "../../common/browser.rs"]
mod harness;

#[allow(dead_code)]
#[path = "../main.rs"]
mod login;

use std::time::{Duration, Instant};

use fantoccini::{Client, Locator};
use harness::{
    arrive_at, browser, browser_available, click, fill, profile_dir, start_driver, text_of,
};

/// The login example, served on a free loopback port: its address, and what stops it.
async fn serve_app() -> (String, rocket::Shutdown, tokio::task::JoinHandle<()>) {
    harness::serve(login::app_on, common::SECRET).await
}

/// Signs in as alice from the login form, and waits for the dashboard.
async fn sign_in(browser: &Client, base: &str) {
    browser.goto(&format!("{base}/login")).await.unwrap();
    fill(browser, "username", "alice").await;
    fill(browser, "password", "wonderland").await;
    click(browser, "sign-in").await;
    arrive_at(browser, "/dashboard").await;
    assert_eq!(text_of(browser, "user").await, "alice");
}

#[rocket::async_test]
async fn a_visitor_signs_in_returns_to_the_dashboard_and_signs_out() {
    if !browser_available() {
        return;
    }

    let (base, shutdown, server) = serve_app().await;
    let (_driver, driver_port) = start_driver().await;
    let browser = browser(driver_port, "walk").await;

    let outcome = async {
        // A stranger asks for the dashboard and lands on the login form.
        browser.goto(&format!("{base}/dashboard")).await.unwrap();
        let url = browser.current_url().await.unwrap();
        assert_eq!(url.path(), "/login");
        assert_eq!(url.query(), Some("next=%2Fdashboard"));

        // Signs in and lands back on the dashboard.
        fill(&browser, "username", "alice").await;
        fill(&browser, "password", "wonderland").await;
        click(&browser, "sign-in").await;
        arrive_at(&browser, "/dashboard").await;
        assert_eq!(text_of(&browser, "user").await, "alice");

        // Signs out: back at the login form, told so once.
        click(&browser, "sign-out").await;
        arrive_at(&browser, "/login").await;
        assert_eq!(
            text_of(&browser, "flash").await,
            "You have been logged out."
        );

        // The dashboard is closed again.
        browser.goto(&format!("{base}/dashboard")).await.unwrap();
        assert_eq!(browser.current_url().await.unwrap().path(), "/login");
        assert!(
            browser.find(Locator::Id("flash")).await.is_err(),
            "the flash was shown once"
        );
    };
    let result = tokio::time::timeout(Duration::from_secs(60), outcome).await;

    let _ = browser.close().await;
    let _ = std::fs::remove_dir_all(profile_dir("walk"));
    shutdown.notify();
    let _ = server.await;
    result.expect("the browser walk finishes within a minute");
}

#[rocket::async_test]
async fn a_user_signed_in_on_two_browsers_signs_the_other_out() {
    if !browser_available() {
        return;
    }

    let (base, shutdown, server) = serve_app().await;
    let (_driver, driver_port) = start_driver().await;
    let laptop = browser(driver_port, "laptop").await;
    let phone = browser(driver_port, "phone").await;

    let outcome = async {
        sign_in(&laptop, &base).await;
        sign_in(&phone, &base).await;
        laptop.goto(&format!("{base}/dashboard")).await.unwrap();
        assert_eq!(text_of(&laptop, "sessions").await, "2");

        // The laptop signs the phone out, and stays signed in itself.
        click(&laptop, "sign-out-others").await;
        let deadline = Instant::now() + Duration::from_secs(10);
        while laptop.find(Locator::Id("flash")).await.is_err() {
            assert!(
                Instant::now() < deadline,
                "no word of the signed-out session"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        arrive_at(&laptop, "/dashboard").await;
        assert_eq!(
            text_of(&laptop, "flash").await,
            "Signed out of 1 other session."
        );
        assert_eq!(text_of(&laptop, "user").await, "alice");
        assert_eq!(text_of(&laptop, "sessions").await, "1");

        // The phone's next request finds no session: back to the login form.
        phone.goto(&format!("{base}/dashboard")).await.unwrap();
        arrive_at(&phone, "/login").await;
    };
    let result = tokio::time::timeout(Duration::from_secs(60), outcome).await;

    for (browser, profile) in [(laptop, "laptop"), (phone, "phone")] {
        let _ = browser.close().await;
        let _ = std::fs::remove_dir_all(profile_dir(profile));
    }
    shutdown.notify();
    let _ = server.await;
    result.expect("the browser walk finishes within a minute");
}
