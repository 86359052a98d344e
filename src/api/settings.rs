//! `Settings`: the library-wide settings that VDDK keeps in InitEx's config file (log level,
//! temporary directory, NBD timeout and TLS credentials, open-file budget, raw devices). The
//! C ABI's InitEx parses its config file with [`Settings::from_vddk_config`] and applies it;
//! a Rust program may do the same, or keep the defaults.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::logging::LogLevel;
use crate::error::{Error, Result};
use crate::remote::settings::RemoteSettings;
use crate::vmdk::fd_cache;
use crate::vmdk::link_files::{ALLOW_RAW_DEVICES_KEY, set_allow_raw_devices};

/// Largest config file read; VDDK's have a few dozen lines.
const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// The settings in force: the last applied, or the defaults.
static CURRENT: Mutex<Option<Settings>> = Mutex::new(None);

/// Library-wide settings. [`Settings::default`] is what an empty config file gives;
/// [`Settings::apply`] makes a value the one in force for every connection and disk opened
/// afterwards.
///
/// ```
/// use vixDiskLib::{LogLevel, Settings};
/// let s = Settings::from_vddk_config("vixDiskLib.transport.LogLevel = \"1\"\n");
/// assert_eq!(s.log_level(), LogLevel::Warning);
/// assert_eq!(s, Settings::from_vddk_config("vixDiskLib.transport.LogLevel = 2"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    log_level: LogLevel,
    /// `tmpDirectory`: where temporary files (nonpersistent redo logs) go.
    tmp_directory: Option<PathBuf>,
    /// `vixDiskLib.nbd.*`: timeout and TLS credentials of NBD connections.
    nbd: RemoteSettings,
    /// `vixDiskLib.maxOpenFiles`: extent descriptors the process keeps open (0: the default,
    /// a quarter of RLIMIT_NOFILE).
    max_open_files: usize,
    /// `vixDiskLib.allowRawDevices = "TRUE"`: raw-disk descriptors may be opened.
    allow_raw_devices: bool,
    /// Lines that were understood but unusable.
    problems: Vec<String>,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            log_level: LogLevel::Info,
            tmp_directory: None,
            nbd: RemoteSettings::default(),
            max_open_files: 0,
            allow_raw_devices: false,
            problems: Vec::new(),
        }
    }
}

impl Settings {
    /// Reads VDDK's `key = "value"` config format leniently: keys are case-insensitive;
    /// unknown keys, comments and malformed lines are ignored; a known key with an unusable
    /// value keeps the default and is listed in [`Settings::problems`].
    ///
    /// ```
    /// let s = vixDiskLib::Settings::from_vddk_config(
    ///     "# backup host\ntmpDirectory = \"/var/tmp\"\nvixDiskLib.maxOpenFiles = \"lots\"\n");
    /// assert_eq!(s.tmp_directory(), std::path::Path::new("/var/tmp"));
    /// assert_eq!(s.problems().len(), 1);
    /// ```
    pub fn from_vddk_config(text: &str) -> Settings {
        let mut s = Settings::default();
        for line in text.lines() {
            let line = line.trim();
            if line.starts_with('#') {
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let value = value.trim().trim_matches('"');
            if let Some(outcome) = s.nbd.apply(key, value) {
                if let Err(why) = outcome {
                    s.problems.push(why);
                }
                continue;
            }
            s.take(key.trim(), value);
        }
        s
    }

    /// One entry that is not an NBD setting.
    fn take(&mut self, key: &str, value: &str) {
        if key.eq_ignore_ascii_case(ALLOW_RAW_DEVICES_KEY) {
            self.allow_raw_devices = value.eq_ignore_ascii_case("TRUE");
        } else if key.eq_ignore_ascii_case("vixDiskLib.maxOpenFiles") {
            match value.parse::<usize>() {
                Ok(n) if n == 0 || n >= fd_cache::MIN_LIMIT => self.max_open_files = n,
                _ => self.problems.push(format!(
                    "vixDiskLib.maxOpenFiles = {value:?} is not 0 or a number of at least {}",
                    fd_cache::MIN_LIMIT
                )),
            }
        } else if key.eq_ignore_ascii_case("tmpDirectory") && !value.is_empty() {
            self.tmp_directory = Some(PathBuf::from(value));
        } else if key.eq_ignore_ascii_case("vixDiskLib.transport.LogLevel")
            && let Ok(n) = value.parse::<u32>()
        {
            self.log_level = match n {
                0..=2 => LogLevel::Warning,
                3 => LogLevel::Info,
                _ => LogLevel::Verbose,
            };
        }
    }

    /// Reads and parses the config file at `path` (at most 1 MiB of it). A FIFO or device is
    /// refused rather than waited on.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("vddk.conf");
    /// std::fs::write(&path, "vixDiskLib.nbd.timeoutSecs = 5\n")?;
    /// let s = vixDiskLib::Settings::read_vddk_config(&path)?;
    /// assert!(s.problems().is_empty());
    /// assert!(vixDiskLib::Settings::read_vddk_config(dir.path().join("none")).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn read_vddk_config(path: impl AsRef<Path>) -> Result<Settings> {
        use std::io::Read;
        let path = path.as_ref();
        let file = crate::vmdk::fileio::open_regular(path, false)?;
        let mut bytes = Vec::new();
        file.take(MAX_CONFIG_BYTES)
            .read_to_end(&mut bytes)
            .map_err(|e| Error::io(path, e))?;
        Ok(Settings::from_vddk_config(&String::from_utf8_lossy(&bytes)))
    }

    /// The config lines that were understood but unusable, as messages.
    ///
    /// ```
    /// let s = vixDiskLib::Settings::from_vddk_config("vixDiskLib.nbd.timeoutSecs = never");
    /// assert!(s.problems()[0].contains("timeoutSecs"));
    /// ```
    pub fn problems(&self) -> &[String] {
        &self.problems
    }

    /// `vixDiskLib.transport.LogLevel`: 0–2 warnings only, 3 (the default) also information,
    /// 4 and more also detail.
    ///
    /// ```
    /// use vixDiskLib::{LogLevel, Settings};
    /// assert_eq!(Settings::default().log_level(), LogLevel::Info);
    /// ```
    pub fn log_level(&self) -> LogLevel {
        self.log_level
    }

    /// Where temporary files go: `tmpDirectory`, else `$TMPDIR`, else `/tmp`.
    ///
    /// ```
    /// let s = vixDiskLib::Settings::default();
    /// assert_eq!(s.tmp_directory(), std::env::temp_dir());
    /// ```
    pub fn tmp_directory(&self) -> PathBuf {
        self.tmp_directory
            .clone()
            .unwrap_or_else(std::env::temp_dir)
    }

    /// Makes these the settings in force: for connections and opens from now on, for the
    /// open-file budget and for raw-disk descriptors.
    ///
    /// ```
    /// use vixDiskLib::Settings;
    /// Settings::from_vddk_config("tmpDirectory = /var/tmp").apply();
    /// assert_eq!(Settings::current().tmp_directory(), std::path::Path::new("/var/tmp"));
    /// Settings::default().apply();
    /// ```
    pub fn apply(&self) {
        set_allow_raw_devices(self.allow_raw_devices);
        fd_cache::set_limit(self.max_open_files);
        *CURRENT.lock().unwrap_or_else(|e| e.into_inner()) = Some(self.clone());
    }

    /// The settings in force (the defaults until [`Settings::apply`]).
    ///
    /// ```
    /// let now = vixDiskLib::Settings::current();
    /// # let _ = now;
    /// ```
    pub fn current() -> Settings {
        CURRENT
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .unwrap_or_default()
    }

    /// The NBD part, for the remote backend.
    pub(crate) fn nbd(&self) -> &RemoteSettings {
        &self.nbd
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_parser_reads_log_level_and_ignores_the_rest() {
        let text = "# comment\ntmpDirectory = \"/tmp\"\nvixDiskLib.transport.LogLevel = \"5\"\nnonsense line\n";
        assert_eq!(
            Settings::from_vddk_config(text).log_level(),
            LogLevel::Verbose
        );
        assert_eq!(
            Settings::from_vddk_config("vixDiskLib.transport.LogLevel=1").log_level(),
            LogLevel::Warning
        );
        assert_eq!(Settings::from_vddk_config("").log_level(), LogLevel::Info);
        let c = Settings::from_vddk_config(
            "vixDiskLib.nbd.timeoutSecs = \"5\"\nvixDiskLib.nbd.timeoutSecs=x\n",
        );
        assert_eq!(c.nbd.timeout, std::time::Duration::from_secs(5));
        assert_eq!(c.problems.len(), 1);
    }

    #[test]
    fn config_parser_reads_max_open_files_and_raw_devices() {
        assert_eq!(Settings::from_vddk_config("").max_open_files, 0);
        let c = Settings::from_vddk_config("vixdisklib.MAXOPENFILES = \"64\"\n");
        assert_eq!((c.max_open_files, c.problems.len()), (64, 0));
        let c = Settings::from_vddk_config(
            "vixDiskLib.maxOpenFiles = 1\nvixDiskLib.maxOpenFiles = lots\n",
        );
        assert_eq!((c.max_open_files, c.problems.len()), (0, 2));
        assert!(
            Settings::from_vddk_config("vixdisklib.allowrawdevices = \"true\"").allow_raw_devices
        );
        assert!(!Settings::from_vddk_config("vixDiskLib.allowRawDevices = no").allow_raw_devices);
    }
}
