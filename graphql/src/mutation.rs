//! The mutations of the driver API.

use async_graphql::{Context, Object};

use crate::accounts::{AuthPayload, RoleGuard, blocking};
use crate::context::ApiContext;

pub struct MutationRoot;

#[Object]
impl MutationRoot {
    /// Issues app (or ad-hoc, other) tokens with fresh eMAIDs, in bulk (operations staff only).
    #[graphql(guard = "RoleGuard(emsp_accounts::Role::Ops)")]
    async fn issue_tokens(
        &self,
        ctx: &Context<'_>,
        input: crate::tokens::IssueTokensInput,
    ) -> async_graphql::Result<Vec<crate::tokens::TokenView>> {
        crate::tokens::issue(ctx, input).await
    }

    /// Imports RFID cards from CSV (text or upload) with a report per row: a bad row never
    /// stops the good ones (operations staff only).
    #[graphql(guard = "RoleGuard(emsp_accounts::Role::Ops)")]
    async fn import_rfid_tokens(
        &self,
        ctx: &Context<'_>,
        csv: Option<String>,
        file: Option<async_graphql::Upload>,
    ) -> async_graphql::Result<crate::tokens::ImportReport> {
        crate::tokens::import(ctx, csv, file).await
    }

    /// Blocks a token (CPOs are told at once) with a reason (operations staff only).
    #[graphql(guard = "RoleGuard(emsp_accounts::Role::Ops)")]
    async fn block_token(
        &self,
        ctx: &Context<'_>,
        uid: String,
        reason: String,
    ) -> async_graphql::Result<crate::tokens::TokenView> {
        crate::tokens::block(ctx, uid, reason).await
    }

    /// Lifts a block (operations staff only).
    #[graphql(guard = "RoleGuard(emsp_accounts::Role::Ops)")]
    async fn unblock_token(&self, ctx: &Context<'_>, uid: String) -> async_graphql::Result<crate::tokens::TokenView> {
        crate::tokens::unblock(ctx, uid).await
    }

    /// Gives a token to a driver and/or a fleet; an absent value clears it (operations staff only).
    #[graphql(guard = "RoleGuard(emsp_accounts::Role::Ops)")]
    async fn assign_token(
        &self,
        ctx: &Context<'_>,
        uid: String,
        user_id: Option<String>,
        fleet_id: Option<String>,
    ) -> async_graphql::Result<crate::tokens::TokenView> {
        crate::tokens::assign(ctx, uid, user_id, fleet_id).await
    }

    /// A new driver account; signs in at once.
    async fn register(
        &self,
        ctx: &Context<'_>,
        email: String,
        password: String,
        name: Option<String>,
    ) -> async_graphql::Result<AuthPayload> {
        let accounts = ctx.data::<ApiContext>()?.accounts.clone();
        blocking(move || accounts.register(&email, &password, name.as_deref())).await.map(Into::into)
    }

    async fn login(&self, ctx: &Context<'_>, email: String, password: String) -> async_graphql::Result<AuthPayload> {
        let accounts = ctx.data::<ApiContext>()?.accounts.clone();
        blocking(move || accounts.login(&email, &password)).await.map(Into::into)
    }

    /// A new token pair for a refresh token, which is spent. Using a spent one again signs out
    /// every device of that login.
    async fn refresh_token(&self, ctx: &Context<'_>, refresh_token: String) -> async_graphql::Result<AuthPayload> {
        let accounts = ctx.data::<ApiContext>()?.accounts.clone();
        blocking(move || accounts.refresh(&refresh_token)).await.map(Into::into)
    }

    /// Ends the login the refresh token belongs to.
    async fn logout(&self, ctx: &Context<'_>, refresh_token: String) -> async_graphql::Result<bool> {
        let accounts = ctx.data::<ApiContext>()?.accounts.clone();
        blocking(move || accounts.logout(&refresh_token)).await.map(|()| true)
    }
}
