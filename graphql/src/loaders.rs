//! Data loaders: the details of every charger on a page come from the store in one query, not
//! one query per charger.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::Loader;
use emsp_domain::{Location, Tariff};
use emsp_store::Store;

use crate::errors::{internal, store_error};

/// Full locations by key.
pub struct LocationLoader(pub Store);

impl Loader<String> for LocationLoader {
    type Value = Arc<Location>;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[String]) -> Result<HashMap<String, Self::Value>, Self::Error> {
        let store = self.0.clone();
        let keys = keys.to_vec();
        let found = tokio::task::spawn_blocking(move || store.get_locations(&keys))
            .await
            .map_err(|e| internal(&e))?
            .map_err(store_error)?;
        Ok(found.into_iter().map(|location| (location.key(), Arc::new(location))).collect())
    }
}

/// Tariffs by key.
pub struct TariffLoader(pub Store);

impl Loader<String> for TariffLoader {
    type Value = Arc<Tariff>;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[String]) -> Result<HashMap<String, Self::Value>, Self::Error> {
        let store = self.0.clone();
        let keys = keys.to_vec();
        let found = tokio::task::spawn_blocking(move || store.get_tariffs(&keys))
            .await
            .map_err(|e| internal(&e))?
            .map_err(store_error)?;
        Ok(found.into_iter().map(|tariff| (tariff.key(), Arc::new(tariff))).collect())
    }
}
