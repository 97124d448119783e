"""The camera stage: JPEG frames over MQTT → camera-health and scene incidents (see ``contract``)."""
