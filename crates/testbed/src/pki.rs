//! Certificates and keys for one control plane, generated at start.
//!
//! One CA signs everything: the kube-apiserver's serving certificate (for
//! `127.0.0.1`, `localhost` and the in-cluster names of the `kubernetes`
//! Service) and the client certificates that authenticate the admin (group
//! `system:masters`) and the kube-controller-manager. The service-account
//! signing key is a separate key pair. Every key is ECDSA P-256, which
//! kube-apiserver, kubectl and kube-rs (rustls) all accept.
//!
//! How Kubernetes maps a client certificate to a user (CN is the user name,
//! each O is a group) is described in
//! <https://kubernetes.io/docs/reference/access-authn-authz/authentication/#x509-client-certificates>.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};

use crate::Error;

/// A certificate and its private key, both PEM.
#[derive(Clone, Debug)]
pub struct CertPair {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// Its private key, PEM.
    pub key_pem: String,
}

/// Everything one control plane needs.
#[derive(Clone, Debug)]
pub struct Pki {
    /// The cluster CA.
    pub ca: CertPair,
    /// kube-apiserver's serving certificate.
    pub serving: CertPair,
    /// The admin client (system:masters).
    pub admin: CertPair,
    /// kube-controller-manager's client certificate.
    pub controller_manager: CertPair,
    /// PEM private key that signs service-account tokens.
    pub service_account_key_pem: String,
    /// Its public key, PEM (kube-apiserver reads public keys only in the
    /// PKIX form, not from a PKCS#8 private key).
    pub service_account_pub_pem: String,
}

/// User name of the admin client certificate.
pub const ADMIN_USER: &str = "metacontroller-testbed-admin";

fn pki_error(e: rcgen::Error) -> Error {
    Error::Pki(e.to_string())
}

impl Pki {
    /// Generates a fresh CA and the certificates it signs.
    pub fn generate() -> Result<Pki, Error> {
        let ca_key = KeyPair::generate().map_err(pki_error)?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(pki_error)?;
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "metacontroller-testbed-ca");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca_params.self_signed(&ca_key).map_err(pki_error)?;
        let ca = CertPair {
            cert_pem: ca_cert.pem(),
            key_pem: ca_key.serialize_pem(),
        };
        let issuer = Issuer::new(ca_params, ca_key);

        let serving = leaf(
            &issuer,
            "kube-apiserver",
            &[],
            &[
                "localhost",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
            ],
            &["127.0.0.1", "10.0.0.1"],
            ExtendedKeyUsagePurpose::ServerAuth,
        )?;
        let admin = leaf(
            &issuer,
            ADMIN_USER,
            &["system:masters"],
            &[],
            &[],
            ExtendedKeyUsagePurpose::ClientAuth,
        )?;
        let controller_manager = leaf(
            &issuer,
            "system:kube-controller-manager",
            &[],
            &[],
            &[],
            ExtendedKeyUsagePurpose::ClientAuth,
        )?;
        let sa_key = KeyPair::generate().map_err(pki_error)?;
        let service_account_key_pem = sa_key.serialize_pem();
        let service_account_pub_pem = sa_key.public_key_pem();
        Ok(Pki {
            ca,
            serving,
            admin,
            controller_manager,
            service_account_key_pem,
            service_account_pub_pem,
        })
    }
}

fn leaf(
    issuer: &Issuer<'_, KeyPair>,
    common_name: &str,
    organizations: &[&str],
    dns_names: &[&str],
    ips: &[&str],
    usage: ExtendedKeyUsagePurpose,
) -> Result<CertPair, Error> {
    let key = KeyPair::generate().map_err(pki_error)?;
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(pki_error)?;
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    for org in organizations {
        params
            .distinguished_name
            .push(DnType::OrganizationName, *org);
    }
    for name in dns_names {
        params
            .subject_alt_names
            .push(SanType::DnsName((*name).try_into().map_err(pki_error)?));
    }
    for ip in ips {
        let ip = ip
            .parse()
            .map_err(|e: std::net::AddrParseError| Error::Pki(e.to_string()))?;
        params.subject_alt_names.push(SanType::IpAddress(ip));
    }
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![usage];
    params.use_authority_key_identifier_extension = true;
    let cert = params.signed_by(&key, issuer).map_err(pki_error)?;
    Ok(CertPair {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_pem_for_every_part() {
        let pki = Pki::generate().unwrap();
        for pair in [&pki.ca, &pki.serving, &pki.admin, &pki.controller_manager] {
            assert!(pair.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
            assert!(pair.key_pem.contains("PRIVATE KEY-----"));
        }
        assert!(pki.service_account_key_pem.contains("PRIVATE KEY-----"));
        assert_ne!(pki.admin.key_pem, pki.serving.key_pem);
    }
}
