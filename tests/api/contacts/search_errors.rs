//! A refused contact search comes back as the search form: the field to fix
//! marked and explained beside it, focused, everything typed kept (nothing
//! card-like), the refusal recorded by its kind.

use callvault::auth::Role;
use reqwest::StatusCode;

use crate::helpers::*;

/// The tag of the form control named `name` (an input or a select).
fn control<'a>(page: &'a str, name: &str) -> &'a str {
    let at = page
        .find(&format!(r#"name="{name}""#))
        .unwrap_or_else(|| panic!("no {name}: {page}"));
    let open = page[..at].rfind('<').unwrap();
    let end = page[at..].find('>').unwrap() + at;
    &page[open..=end]
}

fn marked(page: &str, name: &str) -> bool {
    let tag = control(page, name);
    tag.contains(r#"aria-invalid="true""#) && tag.contains("search-error")
}

/// The message of a refused search.
fn message(page: &str) -> &str {
    let marker = r#"id="search-error">"#;
    let start = page
        .find(marker)
        .unwrap_or_else(|| panic!("no message: {page}"))
        + marker.len();
    let end = page[start..].find('<').unwrap() + start;
    &page[start..end]
}

#[tokio::test]
async fn a_refused_search_comes_back_as_the_form_with_the_field_marked_and_what_was_typed() {
    let app = spawn_demo_app_custom(
        |_, _| {},
        |s| s.aws.searchable_attributes = vec!["tier".into()],
    )
    .await;
    let c = app.login_as(Role::Supervisor).await;
    // (query, the field marked and focused, another marked, what is kept, the audited kind)
    let cases: &[(&str, &str, Option<&str>, &str, &str)] = &[
        (
            "from=2026-11-20&to=2026-01-01&channel=VOICE&agent=agent-7",
            "from",
            Some("to"),
            r#"value="agent-7""#,
            "refused:range",
        ),
        (
            "from=2026-13-45&to=2026-12-01",
            "from",
            None,
            r#"value="2026-13-45""#,
            "refused:date",
        ),
        (
            "from=2026-12-01&to=tomorrow",
            "to",
            None,
            r#"value="2026-12-01""#,
            "refused:date",
        ),
        (
            "agent=agent-1&queue=a%20b",
            "queue",
            None,
            r#"value="agent-1""#,
            "refused:ids",
        ),
        (
            "agent=%3Cscript%3E&queue=queue-1",
            "agent",
            None,
            "&#60;script&#62;",
            "refused:ids",
        ),
        (
            "channel=FAX&range=7d&per_page=50",
            "channel",
            None,
            r#"<option value="7d" selected>"#,
            "refused:channel",
        ),
        ("range=forever", "range", None, "", "refused:relative_range"),
        ("per_page=-5", "per_page", None, "", "refused:page_size"),
        (
            "contact_id=%3Cscript%3E&agent=agent-3",
            "contact_id",
            None,
            r#"value="agent-3""#,
            "refused:contact_id",
        ),
        (
            "attr.tier=%01gold",
            "attr.tier",
            None,
            "",
            "refused:attribute_value",
        ),
    ];
    for (query, field, also, kept, kind) in cases {
        let r = c
            .get(app.url(&format!("/contacts?{query}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{query}");
        let page = r.text().await.unwrap();
        assert!(!page.contains("<script>"), "{query}");
        assert!(marked(&page, field), "{query}: {}", control(&page, field));
        assert!(control(&page, field).contains("autofocus"), "{query}");
        assert_eq!(page.matches("autofocus").count(), 1, "{query}");
        if let Some(also) = also {
            assert!(marked(&page, also), "{query}: {also}");
        }
        assert_eq!(
            page.matches(r#"aria-invalid="true""#).count(),
            1 + usize::from(also.is_some()),
            "{query}"
        );
        assert!(page.contains(kept), "{query}: {kept} not kept");
        let said = message(&page);
        assert!(!said.is_empty() && said.ends_with('.'), "{query}: {said}");
        assert!(!said.contains('['), "{query}: {said}");
        assert!(
            !page.contains("Request refused"),
            "{query}: the form, not an error page"
        );
        let row = app.last_audit("contact_view").await.unwrap();
        assert_eq!(row.outcome, *kind, "{query}");
    }

    // The page size chosen beside a refused field is kept too.
    let page = c
        .get(app.url("/contacts?channel=FAX&per_page=50"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains(r#"<option value="50" selected>"#));

    // A refusal with no field of its own is said above the table.
    let r = c
        .get(app.url("/contacts?sort=agent%3B+DROP&agent=agent-2"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let page = r.text().await.unwrap();
    assert!(message(&page).starts_with("Sort by a column heading"));
    assert!(page.contains(r#"value="agent-2""#));

    // A card number typed into a box is not typed back (nor recorded).
    let r = c
        .get(app.url("/contacts?attr.tier=4111111111111111&from=2026-13-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(!r.text().await.unwrap().contains("4111111111111111"));
    assert_audit_free_of(&app, "4111111111111111").await;

    // Fixed, the same form searches again.
    let page = app
        .page(&c, "/contacts?from=2026-11-20&to=2026-11-21")
        .await;
    assert!(!page.contains("aria-invalid") && !page.contains(r#"id="search-error""#));
}
