"""What deployment needs to know about each pms service beyond `pms services` (the one service
list: names, ports, schemas). deploy/generate.py reads both; a service the list has and this file
does not gets the defaults, so a new service is deployed without editing anything here."""

# Services that need the installation's service secret: auth checks it, patients presents it
# for the service tokens with which it calls billing.
SERVICE_SECRET = {"auth", "patients"}

# Consumers of Kafka topics: more replicas than partitions (PMS_KAFKA_PARTITIONS, 3) idle.
CONSUMERS = {"analytics", "appointments", "notifications"}
PARTITIONS = 3

# Memory limits in MiB where the default (256) is not enough: auth hashes passwords with
# Argon2 (19 MiB each, PMS_AUTH_HASHES_AT_ONCE = 4 at once).
MEMORY_MIB = {"auth": 384}
DEFAULT_MEMORY_MIB = 256

# Fargate task sizes (CPU units, MiB).
TASK_CPU = 256
TASK_MEMORY = 512

# AWS permissions of each service's task role, beyond none (least privilege).
TASK_POLICIES = {
    "notifications": [
        {"Effect": "Allow", "Action": ["ses:SendEmail", "ses:SendRawEmail"], "Resource": "*"},
        {"Effect": "Allow", "Action": ["sns:Publish"], "Resource": "*"},
    ],
}
