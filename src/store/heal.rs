//! After an add replaced damaged objects, the other slices whose trees
//! link those objects' old inodes are rebuilt too: re-adding any source
//! that holds the same content repairs every slice that shares it.

use std::collections::HashSet;
use std::fs;

use super::listing;
use super::objects::ObjectWriter;
use super::staged::{materialise, Stage};
use super::tree::{tree_digest, Node};
use super::verify::Listed;
use super::{fsutil, IoContext, Result, Store};
use crate::digest::Digest;

impl Store {
    /// Rebuilds each slice but `except` that holds one of `replaced`
    /// (objects just swapped for good copies) and is found damaged, from
    /// its listing and the store's objects, and swaps it in as an add
    /// swaps a damaged slice. Returns how many slices were rebuilt. A
    /// slice whose own metadata is damaged is left for its source.
    pub(super) fn heal_sharers(
        &self,
        replaced: &HashSet<(Digest, bool)>,
        except: &Digest,
        trusted: &HashSet<(u64, u64)>,
    ) -> Result<u64> {
        let mut rebuilt = 0;
        for slice in self.slice_digests()? {
            if slice == *except {
                continue;
            }
            // Read as a stream first: most slices share nothing, and only
            // a sharer's listing is held whole.
            if !self.lists_any(&slice, replaced) {
                continue;
            }
            let (Ok(entries), Ok(manifest)) = (self.listing(&slice), self.manifest(&slice)) else {
                continue;
            };
            let Some(tree) = listing::to_tree(&entries).filter(|t| tree_digest(t) == manifest.tree)
            else {
                continue;
            };
            let stage = Stage::create(self)?;
            let staged = stage.path.join("slice");
            fs::create_dir(&staged).at("create staging directory", &staged)?;
            // A writer of its own: every object it names is published.
            let objects = ObjectWriter::new(self, &stage.path)?;
            materialise(&tree, &staged.join("tree"), &objects)?;
            let listing_path = staged.join("listing");
            fs::write(&listing_path, listing::write(&tree)).at("write listing", &listing_path)?;
            manifest.write(&staged.join("manifest.json"))?;
            fsutil::sync_filesystem(self.root())?;
            if self.publish_slice(&staged, &slice, trusted)? {
                rebuilt += 1;
            }
        }
        Ok(rebuilt)
    }

    /// Whether `slice`'s listing names one of `objects` (a listing that
    /// cannot be read names none: its slice is left for its source).
    fn lists_any(&self, slice: &Digest, objects: &HashSet<(Digest, bool)>) -> bool {
        let Ok(mut listed) = Listed::open(self, slice) else {
            return false;
        };
        while let Ok(Some(entry)) = listed.next() {
            if let Node::File {
                content,
                executable,
                size,
            } = entry.node
            {
                if size > 0 && objects.contains(&(content, executable)) {
                    return true;
                }
            }
        }
        false
    }
}
