//! Slab keys as types, and a slab that takes only its own kind of key, so a
//! job's key can never be used as a connection's.

use std::marker::PhantomData;

use slab::Slab;

/// A key of a [`Table`].
pub trait Key: Copy {
    fn new(index: usize) -> Self;
    fn index(self) -> usize;
}

macro_rules! key {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(usize);

        impl Key for $name {
            fn new(index: usize) -> Self {
                $name(index)
            }
            fn index(self) -> usize {
                self.0
            }
        }
    };
}

key!(
    /// A TCP connection; its index is also its poll token.
    ConnKey
);
key!(
    /// A job in the job table.
    JobKey
);
key!(
    /// A warm Node.js worker in its pool.
    WorkerKey
);
key!(
    /// An HTTP connection to the metrics listener.
    ScrapeKey
);

key!(
    /// An HTTP connection to the dashboard.
    WebKey
);

/// A slab whose entries are reached only by keys of type `K`.
#[derive(Debug)]
pub struct Table<K, V> {
    slab: Slab<V>,
    key: PhantomData<K>,
}

impl<K, V> Default for Table<K, V> {
    fn default() -> Self {
        Table {
            slab: Slab::new(),
            key: PhantomData,
        }
    }
}

impl<K: Key, V> Table<K, V> {
    pub fn insert(&mut self, value: V) -> K {
        K::new(self.slab.insert(value))
    }

    /// Inserts the value that `make` builds from its future key.
    pub fn insert_with(&mut self, make: impl FnOnce(K) -> V) -> K {
        let entry = self.slab.vacant_entry();
        let key = K::new(entry.key());
        entry.insert(make(key));
        key
    }

    /// The key the next insert will get.
    pub fn next_key(&self) -> K {
        K::new(self.slab.vacant_key())
    }

    pub fn get(&self, key: K) -> Option<&V> {
        self.slab.get(key.index())
    }

    pub fn get_mut(&mut self, key: K) -> Option<&mut V> {
        self.slab.get_mut(key.index())
    }

    pub fn remove(&mut self, key: K) -> Option<V> {
        self.slab.try_remove(key.index())
    }

    pub fn len(&self) -> usize {
        self.slab.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slab.is_empty()
    }

    /// Gives back the capacity beyond its last entry (all of it when empty).
    pub fn shrink(&mut self) {
        self.slab.shrink_to_fit();
    }

    pub fn iter(&self) -> impl Iterator<Item = (K, &V)> {
        self.slab.iter().map(|(i, v)| (K::new(i), v))
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (K, &mut V)> {
        self.slab.iter_mut().map(|(i, v)| (K::new(i), v))
    }

    /// Keys of the entries `keep` selects, collected so the table can be
    /// changed while they are visited.
    pub fn keys_where(&self, keep: impl Fn(&V) -> bool) -> Vec<K> {
        self.iter()
            .filter(|(_, v)| keep(v))
            .map(|(k, _)| k)
            .collect()
    }
}
