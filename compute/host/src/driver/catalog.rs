//! What `boot` picks from besides images: keypairs (imported, or generated with the
//! private key handed back once) and flavors, each checked by the core's rules
//! before the store records it.

use super::{DriverError, Host};
use crate::keygen;
use compute::flavor::Flavor;
use compute::keypair::Keypair;

impl Host {
    /// Records `public_key` (OpenSSH's one-line form) as the operator's keypair
    /// `name`.
    pub fn import_keypair(&self, name: &str, public_key: &str) -> Result<Keypair, DriverError> {
        let keypair = Keypair::new(name, public_key)?;
        self.store
            .add_keypair(compute_store::OPERATOR_USER_ID, &keypair, &super::now())?;
        Ok(keypair)
    }

    /// Generates a keypair named `name` and records its public key; the private key
    /// is returned, to be shown once: it is kept nowhere.
    pub fn generate_keypair(&self, name: &str) -> Result<(Keypair, String), DriverError> {
        let key = keygen::generate(name)?;
        let keypair = self.import_keypair(name, &key.public)?;
        Ok((keypair, key.private))
    }

    /// Records a custom flavor, once its sizes pass the core's limits.
    pub fn create_flavor(&self, flavor: &Flavor) -> Result<(), DriverError> {
        flavor.validate()?;
        self.store.add_flavor(flavor)?;
        Ok(())
    }
}
