"""Kafka security for every aiokafka and Faust client latentline opens: the Faust worker, the
aiokafka producer, admin client and collector. One place reads the settings, so a deployment with
TLS and SASL configures it once (LATENTLINE_KAFKA_*); the camera-side client (kafka-python,
streams/client.py) reads the same settings in ``CameraClient.from_settings``."""

import ssl

from aiokafka.helpers import create_ssl_context

from latentline.streams.settings import Settings


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    if "SSL" not in settings.kafka_security_protocol:
        return None
    cafile = str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None
    return create_ssl_context(cafile=cafile)


def aiokafka_options(settings: Settings) -> dict:
    """Keyword arguments for AIOKafkaProducer, AIOKafkaConsumer and AIOKafkaAdminClient."""
    options: dict = {"security_protocol": settings.kafka_security_protocol}
    if context := ssl_context(settings):
        options["ssl_context"] = context
    if settings.kafka_security_protocol.startswith("SASL"):
        options |= {
            "sasl_mechanism": settings.kafka_sasl_mechanism,
            "sasl_plain_username": settings.kafka_sasl_username,
            "sasl_plain_password": settings.kafka_sasl_password.get_secret_value(),
        }
    return options


def faust_credentials(settings: Settings):
    """Faust's ``broker_credentials``: None for PLAINTEXT."""
    import faust

    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    if protocol == "SSL":
        return faust.SSLCredentials(ssl_context(settings))
    return faust.SASLCredentials(
        username=settings.kafka_sasl_username,
        password=settings.kafka_sasl_password.get_secret_value(),
        ssl_context=ssl_context(settings),
        mechanism=settings.kafka_sasl_mechanism,
    )
