//! One in-memory view of a bot export, whether it came from a folder, a
//! `.zip` or the copy embedded in the binary, so the loader has one code path.

use super::LoadError;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

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
            let bytes = std::fs::read(path)
                .map_err(|e| LoadError::new(path.display().to_string(), None, e.to_string()))?;
            Self::from_zip_bytes(&bytes, &path.display().to_string())
        }
    }

    pub fn from_dir(root: &Path) -> Result<Self, LoadError> {
        let mut files = BTreeMap::new();
        let mut stack = vec![root.to_path_buf()];
        while let Some(dir) = stack.pop() {
            let entries = std::fs::read_dir(&dir)
                .map_err(|e| LoadError::new(dir.display().to_string(), None, e.to_string()))?;
            for entry in entries {
                let entry = entry
                    .map_err(|e| LoadError::new(dir.display().to_string(), None, e.to_string()))?;
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                    continue;
                }
                if path.extension().and_then(|e| e.to_str()) != Some("json") {
                    continue;
                }
                let rel = path.strip_prefix(root).unwrap_or(&path);
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| LoadError::new(path.display().to_string(), None, e.to_string()))?;
                files.insert(normalise(&rel.to_string_lossy()), text);
            }
        }
        Ok(FileMap { files })
    }

    pub fn from_zip_bytes(bytes: &[u8], name: &str) -> Result<Self, LoadError> {
        let bad = |e: &dyn std::fmt::Display| LoadError::new(name, None, format!("zip: {e}"));
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(|e| bad(&e))?;
        let mut files = BTreeMap::new();
        for i in 0..archive.len() {
            let mut entry = archive.by_index(i).map_err(|e| bad(&e))?;
            if entry.is_dir() || !entry.name().ends_with(".json") {
                continue;
            }
            let path = normalise(entry.name());
            let mut text = String::new();
            entry
                .read_to_string(&mut text)
                .map_err(|e| LoadError::new(format!("{name}!{path}"), None, e.to_string()))?;
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

fn normalise(path: &str) -> String {
    path.replace('\\', "/").trim_start_matches("./").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
