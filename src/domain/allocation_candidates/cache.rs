//! PLACEHOLDER: being implemented. The `World` shared by the requests of
//! one process, brought up to date before each candidates request.

use std::sync::{PoisonError, RwLock, RwLockReadGuard};

use super::world::World;
use crate::errors::DomainError;
use crate::storage::Connection;

pub struct WorldCache {
    world: RwLock<World>,
}

impl Default for WorldCache {
    fn default() -> Self {
        WorldCache::new()
    }
}

impl WorldCache {
    pub fn new() -> WorldCache {
        WorldCache {
            world: RwLock::new(World::new()),
        }
    }

    /// Brings the view up to date with every write committed before this
    /// call, in this process or another.
    pub fn refresh(&self, _connection: &mut Connection) -> Result<(), DomainError> {
        Ok(())
    }

    /// The current view, for reading.
    pub fn read(&self) -> RwLockReadGuard<'_, World> {
        self.world.read().unwrap_or_else(PoisonError::into_inner)
    }
}
