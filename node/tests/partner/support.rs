//! The partner suites' database: the partner module's view ([`PartnerDb`]) of a fresh, fully migrated test
//! database from the test kit (SQLite, and PostgreSQL at `REMESA_TEST_DATABASE_URL` where reachable).

use remesa::partner::store::PartnerDb;
use remesa_testkit::FromTestDb;

/// A partner view of a fresh database; the database lives as long as the value.
pub struct TestDb {
    pub db: PartnerDb,
    _kit: remesa_testkit::TestDb,
}

impl FromTestDb for TestDb {
    async fn from_test_db(kit: remesa_testkit::TestDb) -> Self {
        TestDb {
            db: PartnerDb::from(&kit.db),
            _kit: kit,
        }
    }
}
