//! A local folder as a store: the default destination, needing no server. Objects are files
//! under the folder at their keys; each is written to a temporary file and renamed into place,
//! so a reader never sees half an object.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use md5::{Digest, Md5};
use rayon::prelude::*;

use crate::layout;

use super::{
    BatchStats, Downloaded, HashedFile, ObjectInfo, Store, StoreError, StoreErrorKind, Upload,
    UploadProgress,
};

/// Files up to this size get an MD5 ETag in listings (entry manifests are far smaller).
const ETAG_LIMIT: u64 = 1 << 20;

pub struct LocalStore {
    root: PathBuf,
}

impl LocalStore {
    pub fn new(root: PathBuf) -> LocalStore {
        LocalStore { root }
    }

    fn error(&self, key: &str, action: &str, e: io::Error) -> StoreError {
        let kind = if e.kind() == io::ErrorKind::PermissionDenied {
            StoreErrorKind::Denied
        } else {
            StoreErrorKind::Local
        };
        StoreError::new(
            kind,
            &self.destination(),
            Some(key),
            format!("cannot {action}: {e}"),
        )
    }

    fn write(&self, key: &str, from: Option<&Path>, bytes: &[u8]) -> Result<(), StoreError> {
        let path = self.root.join(key);
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(|e| self.error(key, "create its folder", e))?;
        }
        let tmp = part_path(&path);
        match from {
            Some(src) => fs::copy(src, &tmp).map(|_| ()),
            None => fs::write(&tmp, bytes),
        }
        .map_err(|e| self.error(key, "write", e))?;
        fs::rename(&tmp, &path).map_err(|e| self.error(key, "rename into place", e))
    }
}

fn walk(dir: &Path, rel: &str, out: &mut Vec<(String, PathBuf)>) -> io::Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let key = format!("{rel}{name}");
        if entry.file_type()?.is_dir() {
            walk(&entry.path(), &format!("{key}/"), out)?;
        } else if !name.ends_with(".pressing-part") {
            out.push((key, entry.path()));
        }
    }
    Ok(())
}

impl Store for LocalStore {
    fn destination(&self) -> String {
        self.root.display().to_string()
    }

    fn locator(&self, key: &str) -> String {
        self.root.join(key).display().to_string()
    }

    fn list(&self, prefix: &str) -> Result<BTreeMap<String, ObjectInfo>, StoreError> {
        let mut files = Vec::new();
        walk(&self.root.join(prefix), prefix, &mut files)
            .map_err(|e| self.error(prefix, "list", e))?;
        let mut out = BTreeMap::new();
        for (key, path) in files {
            let size = fs::metadata(&path)
                .map_err(|e| self.error(&key, "stat", e))?
                .len();
            let etag = if size <= ETAG_LIMIT {
                let bytes = fs::read(&path).map_err(|e| self.error(&key, "read", e))?;
                Some(layout::hex(&Md5::digest(&bytes)))
            } else {
                None
            };
            out.insert(key, ObjectInfo { size, etag });
        }
        Ok(out)
    }

    fn put(
        &self,
        uploads: &[Upload<'_>],
        progress: &dyn UploadProgress,
    ) -> Result<BatchStats, StoreError> {
        let sizes = uploads
            .par_iter()
            .map(|u| {
                let a = u.artifact;
                self.write(&a.key, Some(&a.path), &[])?;
                let size = fs::metadata(&a.path)
                    .map_err(|e| self.error(&a.key, "stat", e))?
                    .len();
                progress.uploaded(size);
                Ok(size)
            })
            .collect::<Result<Vec<u64>, StoreError>>()?;
        Ok(BatchStats {
            objects: sizes.len() as u64,
            bytes: sizes.iter().sum(),
            requests: sizes.len() as u64,
        })
    }

    fn put_bytes(&self, key: &str, bytes: &[u8], _: &str, _: &str) -> Result<(), StoreError> {
        self.write(key, None, bytes)
    }

    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        match fs::read(self.root.join(key)) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.error(key, "read", e)),
        }
    }

    fn download(&self, key: &str, to: &Path) -> Result<Option<Downloaded>, StoreError> {
        use std::io::Read as _;
        let mut from = match fs::File::open(self.root.join(key)) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.error(key, "download", e)),
        };
        let mut copy = || -> io::Result<Downloaded> {
            let mut out = HashedFile::create(to)?;
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let n = from.read(&mut buf)?;
                if n == 0 {
                    return out.finish();
                }
                out.write(&buf[..n])?;
            }
        };
        copy().map(Some).map_err(|e| self.error(key, "download", e))
    }

    fn delete(&self, keys: &[String]) -> Result<u64, StoreError> {
        for key in keys {
            let path = self.root.join(key);
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(self.error(key, "delete", e)),
            }
            // Drop folders the delete left empty, up to the root.
            let mut dir = path.parent();
            while let Some(d) = dir {
                if d == self.root || fs::remove_dir(d).is_err() {
                    break;
                }
                dir = d.parent();
            }
        }
        Ok(keys.len() as u64)
    }
}

/// The temporary file an object is written to before its rename: the whole file name and a
/// suffix, so two keys that differ only in their extension (`free.m3u8`, `free.mpd`), written
/// at once, never share one (they did: one rename took the other's file away).
fn part_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".pressing-part");
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::{Artifact, ArtifactKind};

    #[test]
    fn keys_that_differ_in_their_extension_have_their_own_temporary_files() {
        let a = part_path(Path::new("/s/qz/free.m3u8"));
        let b = part_path(Path::new("/s/qz/free.mpd"));
        assert_ne!(a, b);
        assert_eq!(a, Path::new("/s/qz/free.m3u8.pressing-part"));
    }

    #[test]
    fn put_list_get_delete_round_trip() {
        let dir = std::env::temp_dir().join(format!("pressing-local-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let src = dir.join("src.m3u8");
        fs::create_dir_all(&dir).unwrap();
        fs::write(&src, b"#EXTM3U\n").unwrap();
        let store = LocalStore::new(dir.join("store"));
        let a = Artifact::new("t/free-aac.m3u8".into(), src, ArtifactKind::EntryManifest);
        let up = [Upload {
            artifact: &a,
            cache_control: "x",
        }];
        let s = store.put(&up, &super::super::NoUploadProgress).unwrap();
        assert_eq!((s.objects, s.bytes), (1, 8));
        let listed = store.list("t/").unwrap();
        assert_eq!(listed["t/free-aac.m3u8"].size, 8);
        let md5 = layout::hex(&Md5::digest(b"#EXTM3U\n"));
        assert_eq!(listed["t/free-aac.m3u8"].etag, Some(md5));
        assert_eq!(store.get("t/free-aac.m3u8").unwrap().unwrap(), b"#EXTM3U\n");
        assert_eq!(store.get("t/none").unwrap(), None);
        let copy = dir.join("copy.m3u8");
        let got = store.download("t/free-aac.m3u8", &copy).unwrap().unwrap();
        let sha256 = layout::hex(&sha2::Sha256::digest(b"#EXTM3U\n"));
        assert_eq!(got, Downloaded { size: 8, sha256 });
        assert_eq!(fs::read(&copy).unwrap(), b"#EXTM3U\n");
        assert_eq!(store.download("t/none", &copy).unwrap(), None);
        store.delete(&["t/free-aac.m3u8".into()]).unwrap();
        assert!(store.list("t/").unwrap().is_empty());
        assert!(!dir.join("store/t").exists());
        fs::remove_dir_all(&dir).unwrap();
    }
}
