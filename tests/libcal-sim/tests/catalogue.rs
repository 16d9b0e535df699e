//! Locations, categories, items and seats under both prefixes, with per-id errors.

mod common;

use common::Api;
use serde_json::json;

#[tokio::test]
async fn locations_omit_formid_and_both_prefixes_answer_alike() {
    let api = Api::start().await;
    let old = api.ok("1.1/space/locations").await;
    assert_eq!(
        old,
        vec![json!({ "lid": api.lid, "name": "Main", "public": 1 })]
    );
    assert_eq!(api.ok("api/1.1/space/locations").await, old);
}

#[tokio::test]
async fn categories_list_per_location_and_flag_unknown_ids() {
    let api = Api::start().await;
    let list = api
        .ok(&format!("1.1/space/categories/{},77", api.lid))
        .await;
    assert_eq!(list[0]["lid"], api.lid);
    assert_eq!(list[0]["categories"][0]["cid"], api.cid);
    assert_eq!(list[0]["categories"][0]["name"], "Rooms");
    assert_eq!(
        list[1],
        json!({ "lid": 77, "error": "invalid location id" })
    );
}

#[tokio::test]
async fn category_items_are_ids_unless_details() {
    let api = Api::start().await;
    let bare = api.ok(&format!("1.1/space/category/{}", api.cid)).await;
    assert_eq!(bare[0]["items"], json!([api.room, api.hall]));
    let detailed = api
        .ok(&format!("1.1/space/category/{}?details=1", api.cid))
        .await;
    assert_eq!(detailed[0]["items"][1]["id"], api.hall);
    assert_eq!(detailed[0]["items"][1]["isBookableAsWhole"], false);
}

#[tokio::test]
async fn items_tell_rooms_from_seated_spaces() {
    let api = Api::start().await;
    let items = api
        .ok(&format!("1.1/space/item/{},{},5", api.room, api.hall))
        .await;
    assert_eq!(items[0]["isBookableAsWhole"], true);
    assert_eq!(items[0]["groupId"], api.cid);
    assert_eq!(items[0]["groupName"], "Rooms");
    assert_eq!(items[1]["isBookableAsWhole"], false);
    assert_eq!(items[2], json!({ "id": 5, "error": "invalid item id" }));
    assert!(
        items[0].get("zoneId").is_none(),
        "no zones modelled: key omitted"
    );

    let of_location = api.ok(&format!("api/1.1/space/items/{}", api.lid)).await;
    assert_eq!(of_location.len(), 2);
    let paged = api
        .ok(&format!(
            "api/1.1/space/items/{}?pageIndex=1&pageSize=1",
            api.lid
        ))
        .await;
    assert_eq!(paged[0]["id"], api.hall);
    let (status, body) = api
        .get(&format!("api/1.1/space/items/{}?pageSize=101", api.lid))
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("pageSize must be between 1 and 100"))
    );

    let seats = api.ok(&format!("api/1.1/space/seats/{}", api.lid)).await;
    assert_eq!(seats[0]["id"], api.seat);
    assert_eq!(seats[0]["spaceId"], api.hall);
}

#[tokio::test]
async fn malformed_ids_are_400() {
    let api = Api::start().await;
    let (status, body) = api.get("1.1/space/item/12,abc").await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "item \"abc\" is not an id");
}
