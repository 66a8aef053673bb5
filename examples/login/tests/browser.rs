//! examples/login in a real headless Chromium, driven through chromedriver: a stranger is
//! sent to the login form, signs in, lands back where they were going, signs out, and
//! finds the dashboard closed again; a user signed in on two browsers signs the other out.
//!
//! Needs Debian's `chromium` and `chromium-driver` (scripts/test.sh installs them). Under
//! `CI=true` their absence fails the test; elsewhere it is skipped with a message.

#[path = "../../../tests/common/mod.rs"]
mod common;

#[allow(dead_code)]
#[path = "../main.rs"]
mod login;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// chromedriver on a loopback port, killed when dropped.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Whether the browser is here; under CI its absence is a failure.
fn browser_available() -> bool {
    let present =
        std::path::Path::new(CHROMIUM).exists() && std::path::Path::new(CHROMEDRIVER).exists();
    if !present {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{CHROMIUM} and {CHROMEDRIVER} are missing: scripts/test.sh installs them");
        }
        eprintln!(
            "skipped: install Debian's chromium and chromium-driver (bash scripts/test.sh does)"
        );
    }
    present
}

async fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "nothing listens on port {port}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A browser of its own (profile `profile`: its own cookies) on chromedriver's port.
async fn browser(driver_port: u16, profile: &str) -> Client {
    let args = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-quic",
        "--no-first-run",
    ];
    let profile = profile_dir(profile);
    let mut args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    args.push(format!("--user-data-dir={}", profile.display()));
    let capabilities = json!({ "goog:chromeOptions": { "binary": CHROMIUM, "args": args } });
    let capabilities = capabilities.as_object().cloned().unwrap_or_default();
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{driver_port}"))
        .await
        .expect("chromedriver starts a headless Chromium")
}

fn profile_dir(profile: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("rss-chromium-{}-{profile}", std::process::id()))
}

/// The login example, served on a free loopback port: its address, and what stops it.
async fn serve_app() -> (String, rocket::Shutdown, tokio::task::JoinHandle<()>) {
    let app_port = common::free_port();
    let figment = rocket::Config::figment()
        .merge(("log_level", "off"))
        .merge(("address", "127.0.0.1"))
        .merge(("port", app_port))
        .merge(("sessions.secrets", [common::SECRET]));
    let app = login::app_on(figment)
        .ignite()
        .await
        .expect("the login example ignites");
    let shutdown = app.shutdown();
    let server = tokio::spawn(async move {
        let _ = app.launch().await;
    });
    wait_for_port(app_port).await;
    (format!("http://127.0.0.1:{app_port}"), shutdown, server)
}

/// chromedriver on a free loopback port, once it listens.
async fn start_driver() -> (Driver, u16) {
    let driver_port = common::free_port();
    let driver = Driver(
        Command::new(CHROMEDRIVER)
            .arg(format!("--port={driver_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver runs"),
    );
    wait_for_port(driver_port).await;
    (driver, driver_port)
}

/// Clicks the element `#id`.
async fn click(browser: &Client, id: &str) {
    browser
        .find(Locator::Id(id))
        .await
        .unwrap_or_else(|_| panic!("#{id} on the page"))
        .click()
        .await
        .unwrap();
}

/// Signs in as alice from the login form, and waits for the dashboard.
async fn sign_in(browser: &Client, base: &str) {
    browser.goto(&format!("{base}/login")).await.unwrap();
    for (id, text) in [("username", "alice"), ("password", "wonderland")] {
        browser
            .find(Locator::Id(id))
            .await
            .unwrap()
            .send_keys(text)
            .await
            .unwrap();
    }
    click(browser, "sign-in").await;
    arrive_at(browser, "/dashboard").await;
    assert_eq!(text_of(browser, "user").await, "alice");
}

/// The text of the element `#id`, waiting for the page to show it.
async fn text_of(browser: &Client, id: &str) -> String {
    browser
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Id(id))
        .await
        .unwrap_or_else(|_| panic!("#{id} on the page"))
        .text()
        .await
        .unwrap()
}

/// Waits until the browser has navigated to `path`: a click on a submit button returns
/// before the form's request and its redirect have finished.
async fn arrive_at(browser: &Client, path: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let url = browser.current_url().await.unwrap();
        if url.path() == path {
            return;
        }
        assert!(Instant::now() < deadline, "still at {url}, not at {path}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
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
        browser
            .find(Locator::Id("username"))
            .await
            .unwrap()
            .send_keys("alice")
            .await
            .unwrap();
        browser
            .find(Locator::Id("password"))
            .await
            .unwrap()
            .send_keys("wonderland")
            .await
            .unwrap();
        browser
            .find(Locator::Id("sign-in"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        arrive_at(&browser, "/dashboard").await;
        assert_eq!(text_of(&browser, "user").await, "alice");

        // Signs out: back at the login form, told so once.
        browser
            .find(Locator::Id("sign-out"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
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
