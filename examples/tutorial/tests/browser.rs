//! The tutorial in a real headless Chromium: a visitor fills a cart, picks the dark theme,
//! walks the signup steps, is sent to sign in on the way to the account page, signs in,
//! finds the cart and the theme still there, and signs out.
//!
//! Needs Debian's `chromium` and `chromium-driver` (scripts/test.sh installs them). Under
//! `CI=true` their absence fails the test; elsewhere it is skipped with a message.

#[allow(dead_code)]
#[path = "../main.rs"]
mod tutorial;

#[path = "../../common/browser.rs"]
mod harness;

use std::time::Duration;

use fantoccini::Locator;
use harness::{
    arrive_at, browser, browser_available, click, fill, profile_dir, start_driver, text_of,
};

const SECRET: &str = "tutorial-browser-tutorial-browser-tutorial-browser-0123456789";

#[rocket::async_test]
async fn a_visitor_shops_signs_up_signs_in_and_keeps_cart_and_theme() {
    if !browser_available() {
        return;
    }
    let app = |figment| tutorial::app_with(figment, tutorial::sessions());
    let (base, shutdown, server) = harness::serve(app, SECRET).await;
    let (_driver, driver_port) = start_driver().await;
    let browser = browser(driver_port, "tutorial").await;

    let outcome = async {
        // A cart and a theme, through the home page's forms.
        browser.goto(&format!("{base}/")).await.unwrap();
        fill(&browser, "sku", "apple").await;
        click(&browser, "add").await;
        arrive_at(&browser, "/cart").await;
        browser.goto(&format!("{base}/")).await.unwrap();
        assert!(text_of(&browser, "cart").await.contains("apple"));
        click(&browser, "dark").await;
        click(&browser, "save-theme").await;
        // The form posts and comes back to `/`: wait for the page it comes back with.
        let dark = Locator::Css("body.dark");
        let body = browser
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(dark)
            .await;
        assert!(body.is_ok(), "the dark theme is on");

        // The signup keeps its progress from step to step.
        browser.goto(&format!("{base}/signup/1")).await.unwrap();
        fill(&browser, "name", "Alice").await;
        click(&browser, "next").await;
        arrive_at(&browser, "/signup/2").await;
        assert_eq!(text_of(&browser, "name").await, "Alice");
        fill(&browser, "address", "1 Rabbit Hole").await;
        click(&browser, "next").await;
        arrive_at(&browser, "/signup/3").await;
        click(&browser, "next").await;
        arrive_at(&browser, "/signup/done").await;
        assert_eq!(text_of(&browser, "address").await, "1 Rabbit Hole");

        // The account page sends a stranger to sign in, and back after.
        browser.goto(&format!("{base}/account")).await.unwrap();
        let url = browser.current_url().await.unwrap();
        assert_eq!(
            (url.path(), url.query()),
            ("/login", Some("next=%2Faccount"))
        );
        fill(&browser, "username", "alice").await;
        fill(&browser, "password", "wonderland").await;
        click(&browser, "sign-in").await;
        arrive_at(&browser, "/account").await;
        assert_eq!(text_of(&browser, "user").await, "alice");

        // The cart and the theme came along.
        browser.goto(&format!("{base}/")).await.unwrap();
        assert!(text_of(&browser, "cart").await.contains("apple"));
        assert!(browser.find(Locator::Css("body.dark")).await.is_ok());

        // Signed out: told so, and the account is closed again.
        browser.goto(&format!("{base}/account")).await.unwrap();
        click(&browser, "sign-out").await;
        arrive_at(&browser, "/login").await;
        assert_eq!(
            text_of(&browser, "flash").await,
            "You have been signed out."
        );
        browser.goto(&format!("{base}/account")).await.unwrap();
        assert_eq!(browser.current_url().await.unwrap().path(), "/login");
    };
    let result = tokio::time::timeout(Duration::from_secs(60), outcome).await;

    let _ = browser.close().await;
    let _ = std::fs::remove_dir_all(profile_dir("tutorial"));
    shutdown.notify();
    let _ = server.await;
    result.expect("the browser walk finishes within a minute");
}
