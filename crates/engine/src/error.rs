/// Everything that can go wrong between swarmkeeper and the Docker Engine.
///
/// Every variant names the engine's address, so a message printed on its own still says which
/// daemon was meant.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The address (`DOCKER_HOST` or an argument) is not one swarmkeeper can use.
    #[error("cannot use the Docker host {host:?}: {detail}")]
    InvalidHost { host: String, detail: String },
    /// No connection could be made, or the engine stopped answering (including a broken event
    /// stream and a request that timed out).
    #[error("cannot reach the Docker Engine at {host}: {detail}")]
    Unreachable { host: String, detail: String },
    /// The engine answered with an error status; `message` is the engine's own text.
    #[error("the Docker Engine at {host} refused the request: {status} {message}")]
    Api {
        host: String,
        status: u16,
        message: String,
    },
    /// The engine answered with something that is not what its API describes.
    #[error(
        "the Docker Engine at {host} gave an answer to {request} that cannot be read: {detail}"
    )]
    Decode {
        host: String,
        request: String,
        detail: String,
    },
    /// `remove_image` found a container still using the image before it removed any tag, so it
    /// left every tag in place rather than strip all but the last one.
    #[error("the image {image} on the Docker Engine at {host} is used by container {container}; it was not removed")]
    ImageInUse {
        host: String,
        image: String,
        container: String,
    },
    /// `scale_service` was asked to scale a service that has no replica count: a global service
    /// (one task per node) or a job.
    #[error("service {service} is {mode}: {reason} (Docker Engine at {host})")]
    NotScalable {
        host: String,
        /// The service's name.
        service: String,
        /// `global`, `replicated-job` or `global-job`.
        mode: String,
        reason: String,
    },
}

impl EngineError {
    /// The engine said the object does not exist (HTTP 404).
    pub fn is_not_found(&self) -> bool {
        matches!(self, EngineError::Api { status: 404, .. })
    }

    /// The engine refused because of the object's state (HTTP 409), e.g. an image a container
    /// uses or a running container; also [`EngineError::ImageInUse`].
    pub fn is_conflict(&self) -> bool {
        matches!(
            self,
            EngineError::Api { status: 409, .. } | EngineError::ImageInUse { .. }
        )
    }
}
