//! `?limit=&offset=` paging, the same bounds for every list that pages.

use serde::Deserialize;
use utoipa::IntoParams;

use crate::error::ApiError;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct Page {
    /// 1–100, default 50.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// Default 0.
    #[param(minimum = 0, maximum = 1_000_000)]
    pub offset: Option<i64>,
}

impl Page {
    pub fn bounds(&self) -> Result<(i64, i64), ApiError> {
        let limit = self.limit.unwrap_or(50);
        let offset = self.offset.unwrap_or(0);
        if !(1..=100).contains(&limit) {
            return Err(ApiError::bad_request("invalid_query", "limit must be between 1 and 100"));
        }
        if !(0..=1_000_000).contains(&offset) {
            return Err(ApiError::bad_request("invalid_query", "offset must be between 0 and 1000000"));
        }
        Ok((limit, offset))
    }
}
