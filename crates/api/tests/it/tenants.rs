//! A populated platform for the HTTP tests: organization "acme" with an owner, an admin and a
//! member, an outsider who owns another organization, and two API keys of acme — one with every
//! scope, one with only `chat:write`.

use serde_json::{Value, json};

use crate::harness::{Answer, TestApp};

pub const PASSWORD: &str = "a long enough passphrase";
pub const LOCAL: [u8; 4] = [10, 0, 0, 1];

pub struct Tenants {
    pub org: String,
    pub other_org: String,
    pub owner: String,
    pub admin: String,
    pub member: String,
    pub member_id: String,
    pub outsider: String,
    pub key_with: String,
    pub key_without: String,
}

impl TestApp {
    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Answer {
        self.call("POST", path, token, Some(body), LOCAL).await
    }

    /// Signs `email` up, logs in, and answers the access token.
    pub async fn sign_in(&self, email: &str) -> String {
        let answer = self.post("/auth/signup", None, json!({ "email": email, "password": PASSWORD })).await;
        assert_eq!(answer.status, 202, "{:?}", answer.body);
        let answer = self.post("/auth/login", None, json!({ "email": email, "password": PASSWORD })).await;
        assert_eq!(answer.status, 200, "{:?}", answer.body);
        answer.json()["access_token"].as_str().unwrap().to_string()
    }

    /// Invites `email` as `role` to `org` (by `inviter`) and accepts it as `invitee`.
    pub async fn join(&self, org: &str, inviter: &str, invitee: &str, email: &str, role: &str) {
        let path = format!("/organizations/{org}/invitations");
        let answer = self.post(&path, Some(inviter), json!({ "email": email, "role": role })).await;
        assert_eq!(answer.status, 201, "{:?}", answer.body);
        let token = answer.json()["token"].as_str().unwrap().to_string();
        let answer = self.post("/invitations/accept", Some(invitee), json!({ "token": token })).await;
        assert_eq!(answer.status, 200, "{:?}", answer.body);
    }

    pub async fn api_key(&self, org: &str, token: &str, scopes: &[&str]) -> (String, String) {
        let path = format!("/organizations/{org}/api-keys");
        let answer = self.post(&path, Some(token), json!({ "name": "test", "scopes": scopes })).await;
        assert_eq!(answer.status, 201, "{:?}", answer.body);
        let json = answer.json();
        (json["api_key"]["id"].as_str().unwrap().to_string(), json["secret"].as_str().unwrap().to_string())
    }

    pub async fn tenants(&self) -> Tenants {
        let owner = self.sign_in("owner@example.com").await;
        let admin = self.sign_in("admin@example.com").await;
        let member = self.sign_in("member@example.com").await;
        let outsider = self.sign_in("outsider@example.com").await;
        let answer = self.post("/organizations", Some(&owner), json!({ "name": "Acme" })).await;
        assert_eq!(answer.status, 201, "{:?}", answer.body);
        let org = answer.json()["id"].as_str().unwrap().to_string();
        let answer = self.post("/organizations", Some(&outsider), json!({ "name": "Other" })).await;
        let other_org = answer.json()["id"].as_str().unwrap().to_string();
        self.join(&org, &owner, &admin, "admin@example.com", "admin").await;
        self.join(&org, &owner, &member, "member@example.com", "member").await;
        let me = self.call("GET", "/auth/me", Some(&member), None, LOCAL).await.json();
        let member_id = me["user"]["id"].as_str().unwrap().to_string();
        let scopes = ["search:read", "chat:write", "repos:read", "repos:write", "admin"];
        let (_, key_with) = self.api_key(&org, &owner, &scopes).await;
        let (_, key_without) = self.api_key(&org, &owner, &["chat:write"]).await;
        Tenants { org, other_org, owner, admin, member, member_id, outsider, key_with, key_without }
    }
}
