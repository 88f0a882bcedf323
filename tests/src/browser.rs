//! Debian's Chromium, headless, as the browser of the dashboard tests: the DOM after the page's
//! scripts ran, and a screenshot.

use std::path::Path;
use std::process::Command;

fn chromium(user_data: &Path) -> Command {
    let bin = std::env::var_os("CHROMIUM").unwrap_or_else(|| "chromium".into());
    let mut cmd = Command::new(bin);
    // No sandbox as root; no background networking: this machine's network is closed.
    cmd.args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"])
        .args(["--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars"])
        .arg(format!("--user-data-dir={}", user_data.display()))
        // Let the page's fetch/setInterval run a few rounds before the DOM is taken.
        .arg("--virtual-time-budget=4000");
    cmd
}

/// The rendered DOM of `url`.
pub fn dump_dom(url: &str, work: &Path) -> Result<String, String> {
    let profile = work.join(format!("chromium-{}", crate::unique("profile")));
    let out = chromium(&profile).arg("--dump-dom").arg(url).output().map_err(|e| format!("cannot run chromium (make deps): {e}"))?;
    let _ = std::fs::remove_dir_all(&profile);
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A PNG screenshot of `url` at `path`.
pub fn screenshot(url: &str, path: &Path, work: &Path) -> Result<(), String> {
    let profile = work.join(format!("chromium-{}", crate::unique("profile")));
    let out = chromium(&profile)
        .arg("--window-size=1500,700")
        .arg(format!("--screenshot={}", path.display()))
        .arg(url)
        .output()
        .map_err(|e| format!("cannot run chromium: {e}"))?;
    let _ = std::fs::remove_dir_all(&profile);
    if path.exists() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}
