//! End-to-end tests over HTTP on SQLite: every case of `api_cases` against a server spawned on
//! 127.0.0.1:0 over a copy of a slice of the real zh_CN data set imported once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod api_cases;
mod support;

macro_rules! sqlite_tests {
    ($($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                let app = support::spawn_on(support::Backend::Sqlite).await.unwrap();
                api_cases::$name(app).await;
            }
        )*
    };
}

api_cases::for_each_case!(sqlite_tests);
