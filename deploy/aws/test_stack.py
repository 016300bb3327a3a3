"""Deploys deploy/aws/pms.yaml to local AWS emulators and reads every resource back.

    PMS_MOTO_URL=http://127.0.0.1:5000 PMS_LOCALSTACK_URL=http://127.0.0.1:4566 \
    PMS_SERVICES_JSON=services.json python -m unittest deploy/aws/test_stack.py

(scripts/deploy-aws-local.sh starts the emulators and runs this.)

- moto's server creates for real, and gives back through the AWS APIs, the network, the ECS
  cluster, task definitions and services, the load balancer, target group and listener, the RDS
  instance and its subnet group, IAM roles and CloudWatch log groups. It reports CREATE_COMPLETE
  for resource types it cannot create too, so the stack status is never trusted: each resource
  is read back.
- The secrets (which moto's CloudFormation cannot create) are deployed, as written in the
  template, to LocalStack, which creates them with generated values, and read back there.
- What no emulator keeps (API Gateway v2 and its VPC link, MSK, Cloud Map, Fargate sizes and
  awsvpc, the ECS service's load balancer and network settings, which moto drops) is asserted
  from the template itself.
"""

import ast
import json
import os
import time
import unittest
import uuid

import boto3
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
TEMPLATE_PATH = os.path.join(HERE, "pms.yaml")
ENVIRONMENT = "ci" + uuid.uuid4().hex[:6]
CREDENTIALS = dict(region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")


def client(service, url):
    return boto3.client(service, endpoint_url=url, **CREDENTIALS)


def deploy(cloudformation, name, body, parameters):
    """Creates or updates the stack and waits until CloudFormation is done with it."""
    arguments = dict(
        StackName=name,
        TemplateBody=body,
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        Capabilities=["CAPABILITY_NAMED_IAM"],
    )
    try:
        cloudformation.describe_stacks(StackName=name)
        cloudformation.update_stack(**arguments)
    except cloudformation.exceptions.ClientError as err:
        if "does not exist" not in str(err):
            raise
        cloudformation.create_stack(**arguments)
    for _ in range(120):
        stack = cloudformation.describe_stacks(StackName=name)["Stacks"][0]
        if not stack["StackStatus"].endswith("IN_PROGRESS"):
            return stack
        time.sleep(0.5)
    raise AssertionError(f"stack {name} still in progress")


def policy_document(answer):
    """An inline policy as moto returns it: a dict, or the text of one (Python's notation)."""
    document = answer["PolicyDocument"]
    return document if isinstance(document, dict) else ast.literal_eval(document)


def resolve(value, parameters):
    """A template value with Ref to parameters resolved (enough for names built with Fn::Sub)."""
    if isinstance(value, dict) and "Fn::Sub" in value:
        text = value["Fn::Sub"]
        for key, val in parameters.items():
            text = text.replace("${" + key + "}", val)
        return text
    return value


class Stack(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.moto = os.environ["PMS_MOTO_URL"]
        cls.localstack = os.environ["PMS_LOCALSTACK_URL"]
        with open(os.environ["PMS_SERVICES_JSON"]) as f:
            cls.services = json.load(f)
        with open(TEMPLATE_PATH) as f:
            cls.body = f.read()
        cls.template = yaml.safe_load(cls.body)
        cls.resources = cls.template["Resources"]
        cls.parameters = {"Environment": ENVIRONMENT, "ImageUri": "registry.example.org/pms:ci"}
        cloudformation = client("cloudformation", cls.moto)
        # Without MSK's brokers (a first deploy: CloudFormation cannot read them from the
        # cluster it creates), no task runs (docs/deploy.md). Another installation's name.
        waiting = dict(cls.parameters, Environment=ENVIRONMENT + "w")
        deploy(cloudformation, f"pms-{ENVIRONMENT}w", cls.body, waiting)
        ecs = client("ecs", cls.moto)
        cls.waiting_counts = {
            s["serviceName"]: s["desiredCount"]
            for s in ecs.describe_services(cluster=f"pms-{ENVIRONMENT}w", services=[s["name"] for s in cls.services])["services"]
        }
        # With the brokers, every service gets its tasks. (moto does not apply a stack update
        # to an ECS service's count, so the two states are two installations here.)
        cls.parameters["KafkaBootstrapBrokers"] = "b-1.kafka.internal:9094,b-2.kafka.internal:9094"
        cls.stack_name = f"pms-{ENVIRONMENT}"
        deploy(cloudformation, cls.stack_name, cls.body, cls.parameters)
        cls.physical = {
            r["LogicalResourceId"]: r.get("PhysicalResourceId")
            for r in cloudformation.list_stack_resources(StackName=cls.stack_name)["StackResourceSummaries"]
        }

    # --- read back from moto ------------------------------------------------------------------

    def test_the_network_spans_two_availability_zones_with_public_and_private_subnets(self):
        ec2 = client("ec2", self.moto)
        vpc_id = self.physical["Vpc"]
        vpcs = ec2.describe_vpcs(VpcIds=[vpc_id])["Vpcs"]
        self.assertEqual(vpcs[0]["CidrBlock"], "10.40.0.0/16")
        subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"]
        named = {t["Value"]: s for s in subnets for t in s.get("Tags", []) if t["Key"] == "Name"}
        private = [named[f"pms-{ENVIRONMENT}-private-{i}"] for i in (1, 2)]
        public = [named[f"pms-{ENVIRONMENT}-public-{i}"] for i in (1, 2)]
        self.assertEqual(len({s["AvailabilityZone"] for s in private}), 2, "private subnets in two zones")
        self.assertEqual(len({s["AvailabilityZone"] for s in public}), 2, "public subnets in two zones")
        nat = ec2.describe_nat_gateways(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["NatGateways"]
        self.assertEqual([n["SubnetId"] for n in nat], [public[0]["SubnetId"]], "one NAT gateway, in a public subnet")
        routes = ec2.describe_route_tables(RouteTableIds=[self.physical["PrivateRouteTable"]])["RouteTables"][0]
        self.assertIn(nat[0]["NatGatewayId"], [r.get("NatGatewayId") for r in routes["Routes"]], "private subnets go out through NAT")
        # moto keeps no subnet associations made by CloudFormation: from the template.
        associations = {
            v["Properties"]["SubnetId"]["Ref"]: v["Properties"]["RouteTableId"]["Ref"]
            for v in self.resources.values() if v["Type"] == "AWS::EC2::SubnetRouteTableAssociation"
        }
        self.assertEqual(associations, {
            "PublicSubnet1": "PublicRouteTable", "PublicSubnet2": "PublicRouteTable",
            "PrivateSubnet1": "PrivateRouteTable", "PrivateSubnet2": "PrivateRouteTable",
        })

    def test_every_service_of_the_list_runs_in_the_cluster_with_its_own_task_definition(self):
        ecs = client("ecs", self.moto)
        cluster = f"pms-{ENVIRONMENT}"
        self.assertEqual(ecs.describe_clusters(clusters=[cluster])["clusters"][0]["status"], "ACTIVE")
        arns = ecs.list_services(cluster=cluster)["serviceArns"]
        described = ecs.describe_services(cluster=cluster, services=arns)["services"]
        by_name = {s["serviceName"]: s for s in described}
        self.assertEqual(sorted(by_name), sorted(s["name"] for s in self.services), "one ECS service per pms service")
        for service in self.services:
            name = service["name"]
            with self.subTest(service=name):
                ecs_service = by_name[name]
                self.assertEqual(ecs_service["desiredCount"], 2)
                definition = ecs.describe_task_definition(taskDefinition=ecs_service["taskDefinition"])["taskDefinition"]
                self.assertEqual(definition["family"], f"pms-{ENVIRONMENT}-{name}")
                containers = {c["name"]: c for c in definition["containerDefinitions"]}
                main = containers[name]
                self.assertEqual(main["command"], [name])
                self.assertEqual(main["image"], "registry.example.org/pms:ci")
                ports = sorted(p["containerPort"] for p in main["portMappings"])
                self.assertEqual(ports, sorted(p for p in (service["port"], service["grpcPort"]) if p))
                env = {e["name"]: e["value"] for e in main["environment"]}
                self.assertEqual(env[service["bindVar"]], f"0.0.0.0:{service['port']}")
                self.assertEqual(env["PMS_MIGRATE"], "off")
                self.assertEqual(env["PMS_KAFKA_BROKERS"], self.parameters["KafkaBootstrapBrokers"])
                self.assertEqual(env["PMS_AUTH_URL"], "http://auth.pms.internal:8082")
                if service["schema"]:
                    migrate = containers["migrate"]
                    self.assertEqual(migrate["command"], ["migrate", name])
                    self.assertFalse(migrate["essential"])
                    self.assertTrue(env["PMS_DATABASE_URL"].startswith("postgres://pms_app@"))
                    self.assertNotIn("PMS_MIGRATION_DATABASE_URL", env, "the service never sees the owner's login")
                else:
                    self.assertNotIn("migrate", containers)
                    self.assertNotIn("PMS_DATABASE_URL", env)
                logs = main["logConfiguration"]
                self.assertEqual(logs["options"]["awslogs-group"], f"/pms/{ENVIRONMENT}/{name}")

    def test_before_the_brokers_are_known_no_task_runs(self):
        self.assertEqual(len(self.waiting_counts), len(self.services))
        self.assertEqual(set(self.waiting_counts.values()), {0}, self.waiting_counts)

    def test_the_internal_load_balancer_forwards_to_the_gateways_target_group(self):
        elb = client("elbv2", self.moto)
        balancer = elb.describe_load_balancers(Names=[f"pms-{ENVIRONMENT}"])["LoadBalancers"][0]
        self.assertEqual(balancer["Scheme"], "internal")
        self.assertEqual(
            {z["SubnetId"] for z in balancer["AvailabilityZones"]},
            {self.physical["PrivateSubnet1"], self.physical["PrivateSubnet2"]},
        )
        listeners = elb.describe_listeners(LoadBalancerArn=balancer["LoadBalancerArn"])["Listeners"]
        self.assertEqual(len(listeners), 1)
        self.assertEqual(listeners[0]["Port"], 80)
        action = listeners[0]["DefaultActions"][0]
        self.assertEqual(action["Type"], "forward")
        group = elb.describe_target_groups(TargetGroupArns=[action["TargetGroupArn"]])["TargetGroups"][0]
        self.assertEqual(group["TargetGroupName"], f"pms-{ENVIRONMENT}-gateway")
        self.assertEqual((group["Port"], group["TargetType"]), (8080, "ip"))
        self.assertEqual(group["HealthCheckPath"], "/health/live")

    def test_the_database_is_private_encrypted_postgres_in_its_subnet_group(self):
        rds = client("rds", self.moto)
        database = rds.describe_db_instances(DBInstanceIdentifier=f"pms-{ENVIRONMENT}")["DBInstances"][0]
        self.assertEqual(database["Engine"], "postgres")
        self.assertEqual(database["DBName"], "pms")
        self.assertTrue(database["StorageEncrypted"])
        self.assertFalse(database["PubliclyAccessible"])
        group = database["DBSubnetGroup"]
        self.assertEqual(
            {s["SubnetIdentifier"] for s in group["Subnets"]},
            {self.physical["PrivateSubnet1"], self.physical["PrivateSubnet2"]},
        )

    def test_each_service_and_the_api_have_a_log_group(self):
        logs = client("logs", self.moto)
        groups = {g["logGroupName"]: g for g in logs.describe_log_groups(logGroupNamePrefix=f"/pms/{ENVIRONMENT}/")["logGroups"]}
        expected = {f"/pms/{ENVIRONMENT}/{s['name']}" for s in self.services} | {f"/pms/{ENVIRONMENT}/api-gateway"}
        self.assertEqual(set(groups), expected)
        self.assertTrue(all(g.get("retentionInDays") == 90 for g in groups.values()))

    def test_task_roles_are_least_privilege(self):
        iam = client("iam", self.moto)
        for service in self.services:
            name = service["name"]
            role = f"pms-{ENVIRONMENT}-{name}-task"
            policies = iam.list_role_policies(RoleName=role)["PolicyNames"]
            attached = iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]
            with self.subTest(service=name):
                self.assertEqual(attached, [])
                if name == "notifications":
                    document = policy_document(iam.get_role_policy(RoleName=role, PolicyName=policies[0]))
                    actions = sorted(a for s in document["Statement"] for a in s["Action"])
                    self.assertEqual(actions, ["ses:SendEmail", "ses:SendRawEmail", "sns:Publish"])
                else:
                    self.assertEqual(policies, [], f"{name} needs no AWS permission")
        execution = f"pms-{ENVIRONMENT}-task-execution"
        document = policy_document(iam.get_role_policy(RoleName=execution, PolicyName="pms-secrets"))
        self.assertEqual(document["Statement"][0]["Action"], "secretsmanager:GetSecretValue")

    # --- read back from LocalStack ------------------------------------------------------------

    def test_the_secrets_are_generated_with_the_keys_the_tasks_read(self):
        secrets = {k: v for k, v in self.resources.items() if v["Type"] == "AWS::SecretsManager::Secret"}
        self.assertEqual(set(secrets), {"DatabaseSecret", "AppDatabaseSecret", "ServiceSecret", "TokenKeySecret", "AdminSecret"})
        body = yaml.safe_dump({
            "AWSTemplateFormatVersion": "2010-09-09",
            "Parameters": {"Environment": self.template["Parameters"]["Environment"]},
            "Resources": secrets,
        })
        name = f"pms-{ENVIRONMENT}-secrets"
        stack = deploy(client("cloudformation", self.localstack), name, body, {"Environment": ENVIRONMENT})
        self.assertEqual(stack["StackStatus"], "CREATE_COMPLETE")
        manager = client("secretsmanager", self.localstack)
        for logical, resource in secrets.items():
            secret_name = resolve(resource["Properties"]["Name"], {"Environment": ENVIRONMENT})
            with self.subTest(secret=logical):
                value = manager.get_secret_value(SecretId=secret_name)["SecretString"]
                generate = resource["Properties"]["GenerateSecretString"]
                if "GenerateStringKey" in generate:
                    document = json.loads(value)
                    self.assertEqual(len(document["password"]), generate["PasswordLength"])
                    self.assertIn("username", document)
                else:
                    self.assertEqual(len(value), generate["PasswordLength"])
        # What the task definitions ask for exists in those secrets: the key `password` of a JSON
        # secret, or a whole plain one.
        wanted = [s["ValueFrom"] for r in self.resources.values() if r["Type"] == "AWS::ECS::TaskDefinition"
                  for c in r["Properties"]["ContainerDefinitions"] for s in c.get("Secrets", [])]
        plain = {k for k, v in secrets.items() if "GenerateStringKey" not in v["Properties"]["GenerateSecretString"]}
        for value_from in wanted:
            if "Fn::Sub" in value_from:
                logical, key = value_from["Fn::Sub"].removeprefix("${").split("}:", 1)
                self.assertEqual((key, logical in secrets, logical in plain), ("password::", True, False), value_from)
            else:
                self.assertIn(value_from["Ref"], plain, value_from)
        # The signing keys' key-encryption key reaches auth, and only auth.
        holders = [r["Properties"]["Family"]["Fn::Sub"] for r in self.resources.values()
                   if r["Type"] == "AWS::ECS::TaskDefinition"
                   for c in r["Properties"]["ContainerDefinitions"] for s in c.get("Secrets", [])
                   if s["ValueFrom"] == {"Ref": "TokenKeySecret"}]
        self.assertEqual(holders, ["pms-${Environment}-auth"])
        self.assertGreaterEqual(secrets["TokenKeySecret"]["Properties"]["GenerateSecretString"]["PasswordLength"], 32)

    # --- from the template (no emulator keeps these) -------------------------------------------

    def test_api_gateway_reaches_the_load_balancer_listener_through_the_vpc_link(self):
        r = self.resources
        self.assertEqual(r["HttpApi"]["Properties"]["ProtocolType"], "HTTP")
        integration = r["AlbIntegration"]["Properties"]
        self.assertEqual(integration["IntegrationType"], "HTTP_PROXY")
        self.assertEqual(integration["IntegrationUri"], {"Ref": "AlbListener"})
        self.assertEqual(integration["ConnectionType"], "VPC_LINK")
        self.assertEqual(integration["ConnectionId"], {"Ref": "VpcLink"})
        self.assertEqual(r["DefaultRoute"]["Properties"]["Target"], {"Fn::Sub": "integrations/${AlbIntegration}"})
        self.assertEqual(r["VpcLink"]["Properties"]["SubnetIds"], [{"Ref": "PrivateSubnet1"}, {"Ref": "PrivateSubnet2"}])
        self.assertEqual(r["ApiStage"]["Properties"]["StageName"], "$default")
        ingress = r["LoadBalancerSecurityGroup"]["Properties"]["SecurityGroupIngress"]
        self.assertEqual([i["SourceSecurityGroupId"] for i in ingress], [{"Ref": "VpcLinkSecurityGroup"}],
                         "only the VPC link reaches the load balancer")

    def test_tasks_are_fargate_in_private_subnets_and_the_gateway_sits_behind_the_target_group(self):
        for service in self.services:
            n = "".join(p.capitalize() for p in service["name"].split("_"))
            definition = self.resources[f"{n}TaskDefinition"]["Properties"]
            ecs_service = self.resources[f"{n}Service"]["Properties"]
            with self.subTest(service=service["name"]):
                self.assertEqual(definition["RequiresCompatibilities"], ["FARGATE"])
                self.assertEqual(definition["NetworkMode"], "awsvpc")
                self.assertEqual(ecs_service["LaunchType"], "FARGATE")
                network = ecs_service["NetworkConfiguration"]["AwsvpcConfiguration"]
                self.assertEqual(network["AssignPublicIp"], "DISABLED")
                self.assertEqual(network["Subnets"], [{"Ref": "PrivateSubnet1"}, {"Ref": "PrivateSubnet2"}])
                registry = ecs_service["ServiceRegistries"][0]["RegistryArn"]["Fn::Sub"]
                self.assertTrue(registry.endswith("${" + n + "Discovery}"), "found by name in Cloud Map (gRPC)")
                discovery = self.resources[f"{n}Discovery"]["Properties"]
                self.assertEqual((discovery["Name"], discovery["NamespaceId"]), (service["name"], {"Ref": "DiscoveryNamespace"}))
                balancers = ecs_service.get("LoadBalancers", [])
                if service["name"] == "gateway":
                    self.assertEqual(balancers, [{"ContainerName": "gateway", "ContainerPort": service["port"],
                                                  "TargetGroupArn": {"Ref": "GatewayTargetGroup"}}])
                else:
                    self.assertEqual(balancers, [], "only the gateway is reachable from the load balancer")

    def test_kafka_is_msk_with_tls_reachable_from_the_tasks_only(self):
        msk = self.resources["KafkaCluster"]["Properties"]
        self.assertEqual(msk["EncryptionInfo"]["EncryptionInTransit"]["ClientBroker"], "TLS")
        self.assertEqual(msk["BrokerNodeGroupInfo"]["ClientSubnets"], [{"Ref": "PrivateSubnet1"}, {"Ref": "PrivateSubnet2"}])
        rules = self.resources["KafkaSecurityGroup"]["Properties"]["SecurityGroupIngress"]
        self.assertEqual([(i["FromPort"], i["SourceSecurityGroupId"]) for i in rules], [(9094, {"Ref": "ServiceSecurityGroup"})])
        for r in self.resources.values():
            if r["Type"] == "AWS::ECS::TaskDefinition":
                for c in r["Properties"]["ContainerDefinitions"]:
                    env = {e["Name"]: e["Value"] for e in c["Environment"]}
                    if "PMS_KAFKA_BROKERS" in env:
                        self.assertEqual(env["PMS_KAFKA_SECURITY_PROTOCOL"], "ssl")


if __name__ == "__main__":
    unittest.main()
