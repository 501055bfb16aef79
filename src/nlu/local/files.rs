//! One in-memory view of a bot export, whether it came from a folder, a
//! `.zip` or the copy embedded in the binary, so the loader has one code path.

use super::LoadError;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

/// The largest file of an export that is read (zip entry or folder file).
pub const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;
/// The most an export's files may hold together.
pub const MAX_TOTAL_BYTES: u64 = 256 * 1024 * 1024;

/// Relative path (always `/`-separated) -> file text.
#[derive(Debug, Default, Clone)]
pub struct FileMap {
    files: BTreeMap<String, String>,
}

impl FileMap {
    pub fn from_entries<'a>(entries: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let files = entries
            .into_iter()
            .map(|(p, t)| (normalise(p), t.to_string()))
            .collect();
        FileMap { files }
    }

    /// A folder or a `.zip` file, decided by what `path` is.
    pub fn open(path: &Path) -> Result<Self, LoadError> {
        if path.is_dir() {
            Self::from_dir(path)
        } else {
            let bytes = read_zip(path, MAX_TOTAL_BYTES)?;
            Self::from_zip_bytes(&bytes, &path.display().to_string())
        }
    }

    /// Symbolic links are followed, but a folder already read (by its real
    /// path) is not read again, so a link loop ends.
    pub fn from_dir(root: &Path) -> Result<Self, LoadError> {
        let io = |p: &Path, e: std::io::Error| {
            LoadError::new(p.display().to_string(), None, e.to_string())
        };
        let mut files = BTreeMap::new();
        let mut budget = Budget::new(MAX_FILE_BYTES, MAX_TOTAL_BYTES);
        let mut seen = std::collections::HashSet::new();
        let mut stack = vec![root.to_path_buf()];
        while let Some(dir) = stack.pop() {
            if !seen.insert(std::fs::canonicalize(&dir).map_err(|e| io(&dir, e))?) {
                continue;
            }
            let entries = std::fs::read_dir(&dir).map_err(|e| io(&dir, e))?;
            for entry in entries {
                let entry = entry.map_err(|e| io(&dir, e))?;
                let path = entry.path();
                // Followed through symbolic links; anything but a folder or
                // a regular file (a FIFO, a socket, a device) is skipped, as
                // opening a FIFO would wait for a writer for ever.
                let meta = std::fs::metadata(&path).map_err(|e| io(&path, e))?;
                if meta.is_dir() {
                    stack.push(path);
                    continue;
                }
                if !meta.is_file() || path.extension().and_then(|e| e.to_str()) != Some("json") {
                    continue;
                }
                let rel = normalise(&path.strip_prefix(root).unwrap_or(&path).to_string_lossy());
                let file = std::fs::File::open(&path).map_err(|e| io(&path, e))?;
                let text = budget.read(file, &path.display().to_string())?;
                files.insert(rel, text);
            }
        }
        Ok(FileMap { files })
    }

    pub fn from_zip_bytes(bytes: &[u8], name: &str) -> Result<Self, LoadError> {
        Self::from_zip_bytes_within(bytes, name, MAX_FILE_BYTES, MAX_TOTAL_BYTES)
    }

    /// Reads at most `per_file` bytes of each entry and `total` of all of
    /// them, whatever the entries claim, so a zip bomb fails with an error.
    fn from_zip_bytes_within(
        bytes: &[u8],
        name: &str,
        per_file: u64,
        total: u64,
    ) -> Result<Self, LoadError> {
        let bad = |e: &dyn std::fmt::Display| LoadError::new(name, None, format!("zip: {e}"));
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(|e| bad(&e))?;
        let mut files = BTreeMap::new();
        let mut budget = Budget::new(per_file, total);
        for i in 0..archive.len() {
            let entry = archive.by_index(i).map_err(|e| bad(&e))?;
            if entry.is_dir() || !entry.name().ends_with(".json") {
                continue;
            }
            let path = normalise(entry.name());
            let file = format!("{name}!{path}");
            // Refused on its claim before a byte is inflated; the reads are
            // bounded too, for entries that claim less than they hold.
            budget.check(entry.size(), &file)?;
            let text = budget.read(entry, &file)?;
            files.insert(path, text);
        }
        Ok(FileMap { files })
    }

    pub fn get(&self, path: &str) -> Option<&str> {
        self.files.get(path).map(String::as_str)
    }

    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.files.keys().map(String::as_str)
    }

    /// Direct sub-folders of `dir` (which ends with `/` or is empty) that hold `file`.
    pub fn children_with(&self, dir: &str, file: &str) -> Vec<String> {
        let suffix = format!("/{file}");
        let mut out: Vec<String> = self
            .paths()
            .filter_map(|p| p.strip_prefix(dir))
            .filter_map(|rest| rest.strip_suffix(&suffix))
            .filter(|name| !name.is_empty() && !name.contains('/'))
            .map(str::to_string)
            .collect();
        out.dedup();
        out
    }
}

/// The bytes an export may still hand over.
struct Budget {
    per_file: u64,
    total: u64,
    left: u64,
}

impl Budget {
    fn new(per_file: u64, total: u64) -> Budget {
        Budget {
            per_file,
            total,
            left: total,
        }
    }

    fn check(&self, size: u64, file: &str) -> Result<(), LoadError> {
        if size > self.per_file {
            return Err(LoadError::new(
                file,
                None,
                format!(
                    "larger than {}; a bot export's files are far smaller (is this a zip bomb?)",
                    size_text(self.per_file)
                ),
            ));
        }
        if size > self.left {
            return Err(LoadError::new(
                file,
                None,
                format!(
                    "the export's files hold more than {} together; refused",
                    size_text(self.total)
                ),
            ));
        }
        Ok(())
    }

    /// The text of `reader`, failing as soon as it exceeds the budget.
    fn read(&mut self, reader: impl Read, file: &str) -> Result<String, LoadError> {
        let limit = self.per_file.min(self.left);
        let mut bytes = Vec::new();
        reader
            .take(limit + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| LoadError::new(file, None, e.to_string()))?;
        self.check(bytes.len() as u64, file)?;
        self.left -= bytes.len() as u64;
        String::from_utf8(bytes).map_err(|_| LoadError::new(file, None, "not UTF-8 text"))
    }
}

/// A `.zip` export's bytes, refused before they are read when the file is
/// longer than `cap` (the most an export may hold), and read no further
/// than that should it grow meanwhile.
fn read_zip(path: &Path, cap: u64) -> Result<Vec<u8>, LoadError> {
    let name = path.display().to_string();
    let io = |e: std::io::Error| LoadError::new(name.as_str(), None, e.to_string());
    let too_big = || {
        LoadError::new(
            name.as_str(),
            None,
            format!(
                "the .zip is larger than {}, more than a bot export holds; refused",
                size_text(cap)
            ),
        )
    };
    // Not a pipe or a device: reading one could wait for ever.
    if !std::fs::metadata(path).map_err(io)?.is_file() {
        return Err(LoadError::new(
            path.display().to_string(),
            None,
            "is neither a folder nor a .zip file",
        ));
    }
    let file = std::fs::File::open(path).map_err(io)?;
    if file.metadata().map_err(io)?.len() > cap {
        return Err(too_big());
    }
    let mut bytes = Vec::new();
    file.take(cap + 1).read_to_end(&mut bytes).map_err(io)?;
    if bytes.len() as u64 > cap {
        return Err(too_big());
    }
    Ok(bytes)
}

fn size_text(bytes: u64) -> String {
    const MIB: u64 = 1024 * 1024;
    match bytes % MIB {
        0 if bytes > 0 => format!("{} MiB", bytes / MIB),
        _ => format!("{bytes} bytes"),
    }
}

fn normalise(path: &str) -> String {
    path.replace('\\', "/").trim_start_matches("./").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pipe_given_as_the_bot_is_refused_not_waited_on() {
        let dir = tempfile::tempdir().unwrap();
        let pipe = dir.path().join("bot.zip");
        let made = std::process::Command::new("mkfifo").arg(&pipe).status();
        assert!(made.is_ok_and(|s| s.success()), "mkfifo (coreutils)");
        let err = FileMap::open(&pipe).expect_err("a pipe");
        assert!(
            err.reason.contains("neither a folder nor a .zip file"),
            "{err}"
        );
    }

    #[test]
    fn lists_children_holding_a_file() {
        let map = FileMap::from_entries([
            ("B/Intents/A/Intent.json", "{}"),
            ("B/Intents/A/Slots/s/Slot.json", "{}"),
            ("B/Intents/C/Intent.json", "{}"),
        ]);
        assert_eq!(map.children_with("B/Intents/", "Intent.json"), ["A", "C"]);
        assert_eq!(map.children_with("B/Intents/A/Slots/", "Slot.json"), ["s"]);
    }

    #[test]
    fn reads_a_zip() {
        let mut buf = std::io::Cursor::new(Vec::new());
        {
            let mut w = zip::ZipWriter::new(&mut buf);
            let opts = zip::write::SimpleFileOptions::default();
            w.start_file("X/Manifest.json", opts).expect("start");
            std::io::Write::write_all(&mut w, b"{}").expect("write");
            w.finish().expect("finish");
        }
        let map = FileMap::from_zip_bytes(buf.get_ref(), "t.zip").expect("zip");
        assert_eq!(map.get("X/Manifest.json"), Some("{}"));
    }

    /// A zip of `files`, deflated.
    fn zip_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut buf = std::io::Cursor::new(Vec::new());
        {
            let mut w = zip::ZipWriter::new(&mut buf);
            let opts = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Deflated);
            for (name, bytes) in files {
                w.start_file(*name, opts).expect("start");
                std::io::Write::write_all(&mut w, bytes).expect("write");
            }
            w.finish().expect("finish");
        }
        buf.into_inner()
    }

    /// Rewrites every uncompressed-size field of a one-entry zip.
    fn claim_size(mut zip: Vec<u8>, size: u32) -> Vec<u8> {
        let patch = |zip: &mut Vec<u8>, signature: &[u8], offset: usize| {
            let at = zip
                .windows(4)
                .position(|w| w == signature)
                .expect("signature");
            zip[at + offset..at + offset + 4].copy_from_slice(&size.to_le_bytes());
        };
        patch(&mut zip, b"PK\x03\x04", 22);
        patch(&mut zip, b"PK\x01\x02", 24);
        zip
    }

    #[test]
    fn an_entry_claiming_a_huge_size_is_refused_before_it_is_read() {
        let zip = claim_size(zip_of(&[("B/Manifest.json", b"{}")]), u32::MAX - 1);
        let err = FileMap::from_zip_bytes(&zip, "bomb.zip").unwrap_err();
        assert_eq!(err.file, "bomb.zip!B/Manifest.json");
        assert!(err.reason.contains("larger than 64 MiB"), "{err}");
    }

    #[test]
    fn an_entry_inflating_past_the_cap_is_cut_off_with_an_error() {
        let big = vec![b' '; 64 * 1024];
        let zip = zip_of(&[("B/Manifest.json", &big)]);
        assert!(zip.len() < 1024, "a small zip: {}", zip.len());
        // An entry that claims less than it holds is stopped by the reads.
        let lying = claim_size(zip.clone(), 10);
        for bytes in [&zip, &lying] {
            let err = FileMap::from_zip_bytes_within(bytes, "bomb.zip", 4096, 1 << 20).unwrap_err();
            assert!(err.reason.contains("larger than 4096 bytes"), "{err}");
        }
        assert!(FileMap::from_zip_bytes_within(&zip, "ok.zip", 1 << 20, 1 << 20).is_ok());
    }

    #[test]
    fn the_export_as_a_whole_is_capped() {
        let part = vec![b' '; 3000];
        let zip = zip_of(&[("B/a.json", &part), ("B/b.json", &part)]);
        let err = FileMap::from_zip_bytes_within(&zip, "many.zip", 4096, 5000).unwrap_err();
        assert!(
            err.reason.contains("more than 5000 bytes together"),
            "{err}"
        );
    }

    #[test]
    fn a_zip_longer_than_the_total_cap_is_refused_before_it_is_read() {
        // Small JSON, but the archive itself is long (a stored blob).
        let mut x = 0x2545_f491_u32;
        let blob: Vec<u8> = (0..20_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        let zip = zip_of(&[("B/Manifest.json", b"{}"), ("B/blob.bin", &blob)]);
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("bot.zip");
        std::fs::write(&path, &zip).unwrap();
        let err = read_zip(&path, 4096).unwrap_err();
        assert_eq!(err.file, path.display().to_string());
        assert!(err.reason.contains("larger than 4096 bytes"), "{err}");
        assert_eq!(read_zip(&path, zip.len() as u64).unwrap(), zip);
        assert!(FileMap::open(&path).is_ok(), "under the real cap it loads");
    }

    /// A FIFO named `*.json` is skipped: opening it would wait for a writer.
    /// Here a writer does come, so a loader that opened it would read `{}`
    /// from it (and, without the writer, hang).
    #[cfg(target_os = "linux")]
    #[test]
    fn a_fifo_in_a_folder_export_is_skipped() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("Manifest.json"), "{}").unwrap();
        let fifo = dir.path().join("pipe.json");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo");
        assert!(made.success());
        let writer = {
            let fifo = fifo.clone();
            // Blocks until the FIFO has a reader.
            std::thread::spawn(move || {
                let mut w = std::fs::File::create(&fifo).expect("open the FIFO to write");
                std::io::Write::write_all(&mut w, b"{}").expect("write");
            })
        };
        let loaded = FileMap::from_dir(dir.path());
        // Opening read-write never blocks on Linux and lets the writer on;
        // kept open until the writer is done, so its write has a reader.
        let reader = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&fifo)
            .expect("open the FIFO");
        writer.join().expect("writer");
        drop(reader);
        let map = loaded.expect("loads");
        let paths: Vec<&str> = map.paths().collect();
        assert_eq!(paths, ["Manifest.json"]);
    }

    #[cfg(unix)]
    #[test]
    fn a_folder_with_a_symlink_loop_is_read_once() {
        let dir = tempfile::tempdir().expect("temp dir");
        let bot = dir.path().join("Bot");
        std::fs::create_dir_all(bot.join("Inner")).unwrap();
        std::fs::write(dir.path().join("Manifest.json"), "{}").unwrap();
        std::fs::write(bot.join("Inner/Bot.json"), "{}").unwrap();
        std::os::unix::fs::symlink("..", bot.join("Inner/up")).unwrap();
        std::os::unix::fs::symlink(dir.path(), bot.join("root")).unwrap();
        let map = FileMap::from_dir(dir.path()).expect("loads");
        let paths: Vec<&str> = map.paths().collect();
        assert_eq!(paths, ["Bot/Inner/Bot.json", "Manifest.json"]);
    }
}
