//! The examples' browser tests' harness: a headless Chromium driven through chromedriver,
//! and an example app served on a loopback port. Included by path from each example's
//! `tests/browser.rs`.
//!
//! Needs Debian's `chromium` and `chromium-driver` (scripts/test.sh installs them). Under
//! `CI=true` their absence fails the test; elsewhere it is skipped with a message.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use rocket::figment::Figment;
use rocket::{Build, Rocket};
use serde_json::json;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// chromedriver on a loopback port, killed when dropped.
pub struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Whether the browser is here; under CI its absence is a failure.
pub fn browser_available() -> bool {
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

/// A loopback port nothing listens on.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
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
pub async fn browser(driver_port: u16, profile: &str) -> Client {
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
    // On a loaded machine a browser's start can fail at once (chromedriver resets the
    // connection): tried again, for 30 s at most.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let started = ClientBuilder::new(connector)
            .capabilities(capabilities.clone())
            .connect(&format!("http://127.0.0.1:{driver_port}"))
            .await;
        match started {
            Ok(client) => return client,
            Err(e) if Instant::now() < deadline => {
                eprintln!("chromedriver did not start Chromium ({e}); trying again");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("chromedriver starts a headless Chromium within 30 s: {e}"),
        }
    }
}

/// Where the browser of profile `profile` keeps its data: removed after the test.
pub fn profile_dir(profile: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("rss-chromium-{}-{profile}", std::process::id()))
}

/// The app `app` builds on the figment given (with `secret` for its sessions), served on a
/// free loopback port: its address, and what stops it.
pub async fn serve(
    app: impl FnOnce(Figment) -> Rocket<Build>,
    secret: &str,
) -> (String, rocket::Shutdown, tokio::task::JoinHandle<()>) {
    let app_port = free_port();
    let figment = rocket::Config::figment()
        .merge(("log_level", "off"))
        .merge(("address", "127.0.0.1"))
        .merge(("port", app_port))
        .merge(("sessions.secrets", [secret]));
    let app = app(figment).ignite().await.expect("the example ignites");
    let shutdown = app.shutdown();
    let server = tokio::spawn(async move {
        let _ = app.launch().await;
    });
    wait_for_port(app_port).await;
    (format!("http://127.0.0.1:{app_port}"), shutdown, server)
}

/// chromedriver on a free loopback port, once it listens.
pub async fn start_driver() -> (Driver, u16) {
    let driver_port = free_port();
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
pub async fn click(browser: &Client, id: &str) {
    browser
        .find(Locator::Id(id))
        .await
        .unwrap_or_else(|_| panic!("#{id} on the page"))
        .click()
        .await
        .unwrap();
}

/// Types `text` into the element `#id`.
pub async fn fill(browser: &Client, id: &str, text: &str) {
    browser
        .find(Locator::Id(id))
        .await
        .unwrap_or_else(|_| panic!("#{id} on the page"))
        .send_keys(text)
        .await
        .unwrap();
}

/// The text of the element `#id`, waiting for the page to show it.
pub async fn text_of(browser: &Client, id: &str) -> String {
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
pub async fn arrive_at(browser: &Client, path: &str) {
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
